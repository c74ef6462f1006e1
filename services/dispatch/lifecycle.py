"""Case lifecycle state machine (案件闭环处置状态机) of the dispatch service.

A *pure* module: no I/O, no database, no FastAPI, no clock (``now`` is always
passed in). The service layer loads a :class:`CaseSnapshot`, calls
:func:`apply`, stores the :class:`Applied` result (new snapshot + timeline entry)
under optimistic concurrency and publishes the event; or it maps a
:class:`Refused` to an HTTP answer (``forbidden`` → 403, ``conflict`` and
``not_allowed`` → 409, ``invalid`` → 422; a case the caller may not see,
:func:`can_see`, is a 404 before ``apply`` is ever called).

All rules live in one place, :data:`TRANSITIONS` — one :class:`TransitionSpec`
per :class:`Action` saying from which states, by which roles, with which body,
to which state and with which event. The few invariants that hold after *every*
transition are in :func:`_finish`.

States (状态): ``reported`` 上报/立案 → ``dispatched`` 已派遣 → ``accepted`` 已签收 →
``resolved`` 已办结 → ``closed`` 已结案; side states ``rejected`` 已退单, ``triage``
待人工分拨, ``reopened`` 返工/重办. ``overdue`` 超期 is a flag, not a state.

Checks in :func:`apply`, in this order (the first failing one answers):

1. role may perform the action (角色权限) → ``forbidden``;
2. actor's scope covers the case (:func:`may_act`, 数据范围) → ``forbidden``;
3. body parses (:class:`ActionBody` subclass) → ``invalid``;
4. ``expected_version == case.version`` (乐观锁) → ``conflict``;
5. the current state allows the action → ``not_allowed``;
6. ``occurred_at`` neither in the future nor before the previous transition → ``invalid``;
7. case-level precondition (e.g. an extension already pending) → ``not_allowed``;
8. body-versus-case validation (e.g. new deadline not after the current one) → ``invalid``.

The value types (:class:`~services.dispatch.case_model.CaseSnapshot`, :class:`Actor`,
:class:`Applied`, :class:`Refused` …) live in :mod:`services.dispatch.case_model`, the
request bodies in :mod:`services.dispatch.action_bodies`, and what each action checks
and changes (the cells of the table) in :mod:`services.dispatch.transition_rules`.
值类型、请求体与各操作的细则分别在 case_model、action_bodies、transition_rules 模块中。

Working-day arithmetic is not done here: windows such as the 退单 window come in
on the snapshot (``reject_window_ends_at``), computed by the calendar module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from services.dispatch import alarms, invalid, supervision
from services.dispatch import transition_rules as rules
from services.dispatch.action_bodies import (
    AcceptBody,
    ActionBody,
    AddCohandlerBody,
    AssignBody,
    AssignMemberBody,
    CallbackBody,
    CloseBody,
    DecideExtensionBody,
    DispatchBody,
    EscalateBody,
    MarkOverdueBody,
    ReassignBody,
    RecomputeDeadlineBody,
    RejectBody,
    ReopenBody,
    ReportInBody,
    RequestExtensionBody,
    ResolveBody,
    RuleRejectionBody,
    SelfHandleBody,
    SuperviseBody,
    TriageBody,
    VerifyBody,
)
from services.dispatch.case_model import (
    CASE_REPORTED,
    OPEN_STATES,
    RUNNING_STATES,
    STATE_LABELS,
    Action,
    Actor,
    Applied,
    CaseSnapshot,
    CaseState,
    RefusalKind,
    Refused,
    Role,
    TimelineEntry,
    TransitionResult,
)
from shared.visibility import WHOLE_COUNTY, Viewer, sees_case

__all__ = [
    "DEFAULT_MAX_REJECTIONS",
    "TRANSITIONS",
    "TransitionSpec",
    "after_rejection",
    "allowed_actions",
    "apply",
    "body_model",
    "can_see",
    "may_act",
    "replay",
    "reported_entry",
]

#: Rejections (退单) after which a case goes to triage instead of the next candidate.
DEFAULT_MAX_REJECTIONS = 2

Precondition = Callable[[CaseSnapshot, datetime], str | None]
Validator = Callable[[CaseSnapshot, Any, datetime], str | None]
Effect = Callable[[CaseSnapshot, Any, Actor, datetime], dict[str, Any]]
Target = CaseState | Callable[[CaseSnapshot, Any], CaseState] | None
EventType = str | Callable[[Any], str]


@dataclass(frozen=True)
class TransitionSpec:
    """One row of the transition table (流转规则).

    ``target`` None = state unchanged; ``precondition`` is about the case alone
    (refusal ``not_allowed``, also shown by :func:`allowed_actions`); ``validate``
    checks the body against the case (refusal ``invalid``); ``effect`` returns
    the snapshot fields to update besides state/version/time.
    """

    action: Action
    label: str
    from_states: frozenset[CaseState]
    roles: frozenset[Role]
    body: type[ActionBody]
    target: Target
    event: EventType
    precondition: Precondition = rules.no_precondition
    validate: Validator = rules.no_validation
    effect: Effect = rules.no_effect
    notes: str = ""

    def target_state(self, case: CaseSnapshot, body: ActionBody) -> CaseState:
        """State after the transition."""
        if self.target is None:
            return case.state
        if isinstance(self.target, CaseState):
            return self.target
        return self.target(case, body)

    def event_type(self, body: ActionBody) -> str:
        """Event type to publish (past tense)."""
        return self.event if isinstance(self.event, str) else self.event(body)


# --------------------------------------------------------------------------- THE transition table

_S = CaseState
_R = Role
_DISPATCHERS = frozenset({Role.DISPATCHER, Role.ADMIN})


def _states(*states: CaseState) -> frozenset[CaseState]:
    return frozenset(states)


# fmt: off
_TABLE: tuple[TransitionSpec, ...] = (
    TransitionSpec(
        Action.DISPATCH, "派遣", _states(_S.REPORTED, _S.REJECTED), frozenset({_R.SYSTEM, *_DISPATCHERS}),
        DispatchBody, _S.DISPATCHED, "case.dispatched",
        validate=rules.validate_dispatch, effect=rules.effect_dispatch,
        notes="never to a unit that rejected the case (see after_rejection)",
    ),
    TransitionSpec(
        Action.TRIAGE, "转人工分拨", _states(_S.REPORTED, _S.REJECTED), frozenset({_R.SYSTEM, *_DISPATCHERS}),
        TriageBody, _S.TRIAGE, "case.triage_required", effect=rules.effect_triage,
    ),
    TransitionSpec(
        Action.ASSIGN, "手动派遣", _states(_S.TRIAGE, _S.REPORTED), _DISPATCHERS,
        AssignBody, _S.DISPATCHED, "case.assigned", validate=rules.validate_assign, effect=rules.effect_assign,
    ),
    TransitionSpec(
        Action.ACCEPT, "签收", _states(_S.DISPATCHED), frozenset({_R.UNIT}),
        AcceptBody, _S.ACCEPTED, "case.accepted",
    ),
    TransitionSpec(
        Action.REJECT, "退单", _states(_S.DISPATCHED, _S.ACCEPTED), frozenset({_R.UNIT}),
        RejectBody, _S.REJECTED, "case.rejected", precondition=rules.pre_reject, effect=rules.effect_reject,
        notes="only within reject_window_ends_at",
    ),
    TransitionSpec(
        Action.REQUEST_EXTENSION, "延期申请", _states(_S.ACCEPTED), frozenset({_R.UNIT, _R.MEMBER}),
        RequestExtensionBody, None, "case.extension_requested",
        precondition=rules.pre_request_extension, validate=rules.validate_request_extension,
        effect=rules.effect_request_extension,
    ),
    TransitionSpec(
        Action.DECIDE_EXTENSION, "延期审批", _states(_S.ACCEPTED), _DISPATCHERS,
        DecideExtensionBody, None, rules.event_decide_extension,
        precondition=rules.pre_decide_extension, effect=rules.effect_decide_extension,
    ),
    TransitionSpec(
        Action.RULE_REJECTION, "判定退单", frozenset(CaseState) - {_S.REPORTED}, _DISPATCHERS,
        RuleRejectionBody, None, "case.rejection_ruled",
        precondition=rules.pre_rule_rejection, validate=rules.validate_rule_rejection,
        effect=rules.effect_rule_rejection,
    ),
    TransitionSpec(
        Action.REASSIGN, "改派",
        _states(_S.DISPATCHED, _S.ACCEPTED, _S.REJECTED, _S.REOPENED, _S.TRIAGE), _DISPATCHERS,
        ReassignBody, _S.DISPATCHED, "case.reassigned", validate=rules.validate_reassign, effect=rules.effect_reassign,
    ),
    TransitionSpec(
        Action.RESOLVE, "办结", _states(_S.ACCEPTED, _S.REOPENED), frozenset({_R.UNIT, _R.MEMBER}),
        ResolveBody, _S.RESOLVED, "case.resolved", effect=rules.effect_resolve,
        notes="primary unit only, never a co-handler",
    ),
    TransitionSpec(
        Action.VERIFY, "核查", _states(_S.RESOLVED), _DISPATCHERS,
        VerifyBody, rules.target_verify, "case.verified", effect=rules.effect_verify,
        notes="passed → closed; failed → reopened, rework_count + 1",
    ),
    TransitionSpec(
        Action.CLOSE, "结案", _states(_S.RESOLVED), _DISPATCHERS,
        CloseBody, _S.CLOSED, "case.closed",
    ),
    TransitionSpec(
        Action.CALLBACK, "回访", _states(_S.CLOSED), frozenset({_R.HOTLINE, *_DISPATCHERS}),
        CallbackBody, None, "case.callback_recorded", precondition=rules.pre_callback, effect=rules.effect_callback,
        notes="12345 cases only, once per closure",
    ),
    TransitionSpec(
        Action.REOPEN, "重办", _states(_S.CLOSED), _DISPATCHERS,
        ReopenBody, _S.REOPENED, "case.reopened",
        precondition=rules.pre_reopen, validate=rules.validate_reopen, effect=rules.effect_reopen,
        notes="after an unsatisfied callback",
    ),
    TransitionSpec(
        Action.SUPERVISE, "督办", OPEN_STATES, _DISPATCHERS,
        SuperviseBody, None, "case.supervised", effect=rules.effect_supervise,
    ),
    TransitionSpec(
        Action.ESCALATE, "吹哨", OPEN_STATES, frozenset({_R.TOWNSHIP_ADMIN, _R.ADMIN}),
        EscalateBody, None, "case.escalated", precondition=rules.pre_escalate, effect=rules.effect_escalate,
    ),
    TransitionSpec(
        Action.REPORT_IN, "报到", frozenset(CaseState), frozenset({_R.UNIT, _R.ADMIN}),
        ReportInBody, None, "case.reported_in", precondition=rules.pre_report_in, effect=rules.effect_report_in,
        notes="unit role: only the escalated department",
    ),
    TransitionSpec(
        Action.ADD_COHANDLER, "增加协办", OPEN_STATES, _DISPATCHERS,
        AddCohandlerBody, None, "case.cohandler_added",
        validate=rules.validate_add_cohandler, effect=rules.effect_add_cohandler,
    ),
    TransitionSpec(
        Action.MARK_OVERDUE, "超期标记", RUNNING_STATES, frozenset({_R.SYSTEM}),
        MarkOverdueBody, None, "case.overdue", precondition=rules.pre_mark_overdue, effect=rules.effect_mark_overdue,
        notes="refused when already flagged (idempotent sweep)",
    ),
    TransitionSpec(
        Action.SELF_HANDLE, "自办", _states(_S.REPORTED), frozenset({_R.SYSTEM}),
        SelfHandleBody, _S.CLOSED, "case.self_handled", effect=rules.effect_self_handle,
    ),
    TransitionSpec(
        Action.RECOMPUTE_DEADLINE, "期限重算", RUNNING_STATES, frozenset({_R.SYSTEM}),
        RecomputeDeadlineBody, None, "case.deadline_recomputed",
        precondition=rules.pre_recompute_deadline, validate=rules.validate_recompute_deadline,
        effect=rules.effect_recompute_deadline,
        notes="the year's holiday notice was loaded: a provisional deadline becomes final; never flags overdue",
    ),
    # the approval and alarm sources, and invalid reports (cells in invalid / alarms / supervision)
    TransitionSpec(
        Action.MARK_INVALID, "不予立案/作废", invalid.INVALID_FROM, _DISPATCHERS, invalid.MarkInvalidBody,
        _S.CLOSED, "case.invalidated", validate=invalid.validate_mark_invalid, effect=invalid.effect_mark_invalid,
        notes="in triage, or dispatched and not yet accepted; leaves every unit indicator",
    ),
    TransitionSpec(
        Action.ADD_OCCURRENCE, "告警合并", OPEN_STATES, frozenset({_R.SYSTEM}), alarms.AddOccurrenceBody,
        None, "case.occurrence_added", precondition=alarms.pre_alarm_case, effect=alarms.effect_add_occurrence,
    ),
    TransitionSpec(
        Action.AUTO_RECOVER, "自动恢复", alarms.AUTO_RECOVER_FROM, frozenset({_R.SYSTEM}), alarms.AutoRecoverBody,
        _S.CLOSED, "case.auto_recovered", precondition=alarms.pre_alarm_case, effect=alarms.effect_auto_recover,
        notes="the alarm cleared before the case was accepted; not the unit's 办结",
    ),
    TransitionSpec(
        Action.MARK_FALSE_ALARM, "误报", frozenset(CaseState), _DISPATCHERS, alarms.MarkFalseAlarmBody,
        None, "case.false_alarm", precondition=alarms.pre_mark_false_alarm, effect=alarms.effect_mark_false_alarm,
    ),
    TransitionSpec(
        Action.RECORD_INSPECTION, "检查结果", _states(_S.ACCEPTED, _S.REOPENED), frozenset({_R.UNIT}),
        supervision.RecordInspectionBody, _S.CLOSED, "case.inspected",
        precondition=supervision.pre_inspection_task, validate=supervision.validate_record_inspection,
        effect=supervision.effect_record_inspection, notes="rectify: the caller creates the linked follow-up task",
    ),
    TransitionSpec(
        Action.REVOKE, "撤销", OPEN_STATES, frozenset({_R.SYSTEM}), supervision.RevokeBody,
        _S.CLOSED, "case.revoked", precondition=supervision.pre_inspection_task, effect=supervision.effect_revoke,
    ),
    TransitionSpec(
        Action.ASSIGN_MEMBER, "派单到人", _states(_S.ACCEPTED, _S.REOPENED), frozenset({_R.UNIT, *_DISPATCHERS}),
        AssignMemberBody, None, "case.member_assigned",
        validate=rules.validate_assign_member, effect=rules.effect_assign_member,
        notes="the unit's leader acts with the unit's authority (the service checks the registry)",
    ),
)
# fmt: on

#: The transition table (流转规则表): one spec per action.
TRANSITIONS: Mapping[Action, TransitionSpec] = MappingProxyType({spec.action: spec for spec in _TABLE})
assert set(TRANSITIONS) == set(Action) and len(_TABLE) == len(Action), "one spec per action"


def body_model(action: Action) -> type[ActionBody]:
    """The pydantic body model (请求体) of an action, e.g. for the API layer."""
    return TRANSITIONS[action].body


# --------------------------------------------------------------------------- scope 数据范围


def _scope_refusal(case: CaseSnapshot, actor: Actor, action: Action | None) -> str | None:
    """Why ``actor`` may not act on ``case`` (None if it may). Role permissions are checked elsewhere."""
    if actor.role in (Role.ADMIN, Role.SYSTEM, Role.HOTLINE):
        return None
    if actor.role is Role.MEMBER:
        return _member_scope_refusal(case, actor, action)
    if actor.role is Role.UNIT:
        if not actor.unit:
            return "单位账号未绑定单位 / unit actor has no unit"
        if action is Action.REPORT_IN:
            if case.escalation_department != actor.unit:
                return f"{actor.unit} 不是被吹哨的部门 / {actor.unit} is not the escalated department"
            return None
        if case.primary_unit == actor.unit:
            return None
        if actor.unit in case.cohandlers:
            unit = actor.unit
            return f"协办单位 {unit} 只协助办理，不能执行此操作 / co-handler {unit} is not the primary unit"
        return f"{actor.unit} 不是主办单位 / {actor.unit} is not the primary unit of this case"
    # dispatcher, township_admin: bound to a township or the whole county
    if not actor.township:
        return "账号未绑定乡镇 / actor is not bound to a township"
    if actor.township not in (WHOLE_COUNTY, case.township):
        return f"案件不属于乡镇 {actor.township} / the case is outside township {actor.township}"
    return None


def _member_scope_refusal(case: CaseSnapshot, actor: Actor, action: Action | None) -> str | None:
    """A member (队员, ``actor.id`` = member id) acts only on the cases of its unit assigned to it."""
    if not actor.unit or not actor.id:
        return "队员账号未绑定单位 / member actor has no unit or member id"
    if case.primary_unit != actor.unit:
        return f"{actor.unit} 不是主办单位 / {actor.unit} is not the primary unit of this case"
    if actor.id in case.assignees:
        return None
    return f"案件未派给队员 {actor.id} / the case is not assigned to member {actor.id}"


def may_act(case: CaseSnapshot, actor: Actor, action: Action | None = None) -> bool:
    """Whether the case is in the actor's scope to act on (操作范围).

    ``unit``: only as the primary unit (主办), or — for ``report_in`` — as the
    escalated department; dispatcher / township admin: their township (``*`` =
    county); admin, hotline, system: everywhere. Role permissions are separate.
    """
    return _scope_refusal(case, actor, action) is None


def can_see(case: CaseSnapshot, actor: Actor) -> bool:
    """Whether the actor may see the case at all (可见范围; otherwise the API answers 404).

    A unit sees cases where it is primary, co-handler or the escalated department;
    township-bound roles see their township; admin, hotline and system see all
    (the platform's one rule, :func:`shared.visibility.sees_case`).
    """
    return sees_case(
        Viewer.of(actor),
        township=case.township,
        unit=case.primary_unit,
        cohandlers=case.cohandlers,
        escalated_to=case.escalation_department,
        assignees=case.assignees,
    )


# --------------------------------------------------------------------------- apply


def _refuse(case: CaseSnapshot, kind: RefusalKind, reason: str) -> Refused:
    return Refused(kind=kind, reason=reason, current_state=case.state, current_version=case.version)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")


def _role_refusal(spec: TransitionSpec, actor: Actor) -> str | None:
    if actor.role in spec.roles:
        return None
    allowed = ", ".join(sorted(spec.roles))
    return f"角色 {actor.role} 不能{spec.label} / role {actor.role} may not {spec.action} (only: {allowed})"


def _state_refusal(spec: TransitionSpec, case: CaseSnapshot) -> str | None:
    if case.state in spec.from_states:
        return None
    label = STATE_LABELS[case.state]
    return f"案件{label}，不能{spec.label} / cannot {spec.action} a case in state {case.state}"


def _parse_body(spec: TransitionSpec, body: BaseModel | Mapping[str, Any]) -> ActionBody | str:
    if isinstance(body, spec.body):
        return body
    if isinstance(body, BaseModel):
        return f"请求体类型错误 / expected {spec.body.__name__}, got {type(body).__name__}"
    try:
        return spec.body.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors())
        return f"请求体无效 / invalid body: {problems}"


def _time_refusal(case: CaseSnapshot, at: datetime, now: datetime) -> str | None:
    if at > now:
        return f"发生时间在未来 / occurred_at {at.isoformat()} is in the future"
    if at < case.previous_at:
        return (
            f"发生时间早于上一次流转 / occurred_at {at.isoformat()} is before the previous transition "
            f"({case.previous_at.isoformat()})"
        )
    return None


def _finish(case: CaseSnapshot, spec: TransitionSpec, body: ActionBody, actor: Actor, at: datetime) -> CaseSnapshot:
    """Apply the effect and the invariants that hold after every transition (通用规则)."""
    update = spec.effect(case, body, actor, at)
    update["state"] = spec.target_state(case, body)
    update["version"] = case.version + 1
    update["last_transition_at"] = at
    new = case.model_copy(update=update)
    extra: dict[str, Any] = {}
    # A pending extension request lapses once the case leaves `accepted` (办结/退单/改派).
    if new.state is not CaseState.ACCEPTED and new.extension_pending is not None:
        extra["extension_pending"] = None
    # A deadline moved past the transition time clears the overdue flag (judged against the new one).
    if new.overdue and new.deadline != case.deadline and new.deadline is not None and new.deadline > at:
        extra["overdue"] = False
    # A new primary unit: the people the old one sent no longer hold the task (派单到人随主办单位失效).
    if new.primary_unit != case.primary_unit and new.assignees:
        extra.update(assignee=None, assignee_kind=None, assignees=())
    # The primary unit is never also a co-handler.
    if new.primary_unit is not None and new.primary_unit in new.cohandlers:
        extra["cohandlers"] = rules.without(new.cohandlers, new.primary_unit)
    return new.model_copy(update=extra) if extra else new


def _diff(old: CaseSnapshot, new: CaseSnapshot) -> dict[str, Any]:
    """Snapshot fields whose JSON value differs, with their new JSON values (field order).

    JSON 值有变化的快照字段及其新值。A field holding the very same object in both snapshots
    (``model_copy`` keeps unchanged values) cannot differ: only the others are dumped and compared.
    两个快照中为同一对象的字段不可能不同，只序列化比较其余字段。
    """
    before_fields = old.__dict__
    maybe = {key for key, value in new.__dict__.items() if before_fields.get(key, _MISSING) is not value}
    if not maybe:
        return {}
    before, after = old.model_dump(mode="json", include=maybe), new.model_dump(mode="json", include=maybe)
    return {key: value for key, value in after.items() if before.get(key) != value}


_MISSING = object()


def apply(
    case: CaseSnapshot,
    action: Action,
    body: BaseModel | Mapping[str, Any],
    actor: Actor,
    now: datetime,
) -> TransitionResult:
    """Try one transition (执行流转); return :class:`Applied` or :class:`Refused`. Never raises on input.

    ``now`` must be timezone-aware (a naive ``now`` is a programming error → ``ValueError``).
    The effective time is ``body.occurred_at`` (history import) or ``now``.
    """
    _require_aware(now)
    spec = TRANSITIONS[Action(action)]
    if (reason := _role_refusal(spec, actor)) is not None:
        return _refuse(case, "forbidden", reason)
    if (reason := _scope_refusal(case, actor, spec.action)) is not None:
        return _refuse(case, "forbidden", reason)
    parsed = _parse_body(spec, body)
    if isinstance(parsed, str):
        return _refuse(case, "invalid", parsed)
    if parsed.expected_version != case.version:
        return _refuse(
            case,
            "conflict",
            f"案件已被他人修改 / version conflict: expected {parsed.expected_version}, "
            f"case is at {case.version} ({case.state})",
        )
    if (reason := _state_refusal(spec, case)) is not None:
        return _refuse(case, "not_allowed", reason)
    at = parsed.occurred_at or now
    if (reason := _time_refusal(case, at, now)) is not None:
        return _refuse(case, "invalid", reason)
    if (reason := spec.precondition(case, at)) is not None:
        return _refuse(case, "not_allowed", reason)
    if (reason := spec.validate(case, parsed, at)) is not None:
        return _refuse(case, "invalid", reason)
    new = _finish(case, spec, parsed, actor, at)
    return Applied(
        new_case=new,
        event_type=spec.event_type(parsed),
        changes=_diff(case, new),
        action=spec.action,
        body=parsed,
        actor=actor,
        at=at,
    )


def allowed_actions(case: CaseSnapshot, actor: Actor, now: datetime) -> dict[Action, str | None]:
    """For every action: None if the actor may do it now, else why not (按钮可用性, for the dashboard).

    Checks role, scope, state and the case-level precondition; body-dependent
    validation (e.g. the new deadline) is left to :func:`apply`.
    """
    _require_aware(now)
    result: dict[Action, str | None] = {}
    for action, spec in TRANSITIONS.items():
        result[action] = (
            _role_refusal(spec, actor)
            or _scope_refusal(case, actor, action)
            or _state_refusal(spec, case)
            or spec.precondition(case, now)
        )
    return result


# --------------------------------------------------------------------------- after a rejection


def after_rejection(
    case: CaseSnapshot,
    candidates: Sequence[str],
    max_rejections: int = DEFAULT_MAX_REJECTIONS,
) -> tuple[Literal["dispatch", "triage"], str]:
    """What the service does after a 退单 (退单后的再派遣).

    ``("dispatch", unit)``: the first candidate that never rejected the case;
    ``("triage", "rejected_too_often")`` once ``max_rejections`` is reached;
    ``("triage", "no_candidate_left")`` when every candidate rejected it.
    """
    if case.state is not CaseState.REJECTED:
        raise ValueError(f"case {case.id} is {case.state}, not rejected")
    if max_rejections < 1:
        raise ValueError("max_rejections must be at least 1")
    if case.rejection_count >= max_rejections:
        return ("triage", "rejected_too_often")
    rejected = set(case.rejected_by)
    for unit in candidates:
        if unit not in rejected:
            return ("dispatch", unit)
    return ("triage", "no_candidate_left")


# --------------------------------------------------------------------------- timeline replay


def reported_entry(case: CaseSnapshot, actor: Actor) -> TimelineEntry:
    """The first timeline entry (立案): the whole snapshot as created by intake."""
    return TimelineEntry(
        case_id=case.id,
        version=case.version,
        event_type=CASE_REPORTED,
        action=None,
        actor=actor,
        at=case.reported_at,
        changes=case.model_dump(mode="json"),
    )


def replay(events: Sequence[TimelineEntry], *, recheck: bool = False) -> CaseSnapshot:
    """Rebuild a case from its timeline (时间线回放).

    The first entry must be :func:`reported_entry`; every later one must carry
    the next version. With ``recheck`` each transition is also re-run through
    :func:`apply` (at its recorded time) and must give the recorded changes and event.
    Raises ``ValueError`` on a broken timeline.
    """
    if not events:
        raise ValueError("empty timeline")
    first = events[0]
    if first.event_type != CASE_REPORTED or first.action is not None:
        raise ValueError(f"timeline must start with {CASE_REPORTED}, not {first.event_type}")
    case = CaseSnapshot.model_validate(first.changes)
    if case.id != first.case_id or case.version != first.version:
        raise ValueError("creation entry does not match its snapshot")
    for entry in events[1:]:
        if entry.case_id != case.id:
            raise ValueError(f"entry of case {entry.case_id} in the timeline of {case.id}")
        if entry.action is None:
            raise ValueError(f"version {entry.version}: entry without an action")
        if entry.version != case.version + 1 or entry.changes.get("version") != entry.version:
            raise ValueError(f"version {entry.version} does not follow {case.version}")
        if recheck:
            result = apply(case, entry.action, entry.body, entry.actor, now=entry.at)
            if isinstance(result, Refused):
                raise ValueError(f"version {entry.version} ({entry.action}) is refused now: {result.reason}")
            if result.event_type != entry.event_type or result.changes != entry.changes:
                raise ValueError(f"version {entry.version} ({entry.action}) gives different changes now")
        data = case.model_dump(mode="json")
        data.update(entry.changes)
        case = CaseSnapshot.model_validate(data)
    return case
