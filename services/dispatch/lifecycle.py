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

Working-day arithmetic is not done here: windows such as the 退单 window come in
on the snapshot (``reject_window_ends_at``), computed by the calendar module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, ValidationError

from shared.inputs import NulFreeModel
from shared.visibility import Viewer, sees_case

__all__ = [
    "CASE_REPORTED",
    "DEFAULT_MAX_REJECTIONS",
    "HOTLINE_SOURCE",
    "OPEN_STATES",
    "TRANSITIONS",
    "AcceptBody",
    "Action",
    "ActionBody",
    "Actor",
    "AddCohandlerBody",
    "Applied",
    "AssignBody",
    "CallbackBody",
    "CaseSnapshot",
    "CaseState",
    "CloseBody",
    "DecideExtensionBody",
    "DispatchBody",
    "EscalateBody",
    "Escalation",
    "ExtensionRequest",
    "MarkOverdueBody",
    "ReassignBody",
    "RefusalKind",
    "Refused",
    "RejectBody",
    "Rejection",
    "ReopenBody",
    "ReportInBody",
    "RequestExtensionBody",
    "ResolveBody",
    "Role",
    "RuleRejectionBody",
    "Satisfaction",
    "SelfHandleBody",
    "SuperviseBody",
    "TimelineEntry",
    "TransitionResult",
    "TransitionSpec",
    "TriageBody",
    "VerifyBody",
    "after_rejection",
    "allowed_actions",
    "apply",
    "body_model",
    "can_see",
    "may_act",
    "replay",
    "reported_entry",
]

#: Source code of 12345 hotline cases (12345 热线); only they get a 回访 callback.
HOTLINE_SOURCE = "12345"
#: Rejections (退单) after which a case goes to triage instead of the next candidate.
DEFAULT_MAX_REJECTIONS = 2
#: Event type of the first timeline entry (the case as created by intake, 立案).
CASE_REPORTED = "case.reported"
#: Township scope meaning "the whole county" (全县).
WHOLE_COUNTY = "*"


# --------------------------------------------------------------------------- vocabularies


class CaseState(StrEnum):
    """Case state (案件状态)."""

    REPORTED = "reported"  # 上报 / 立案
    DISPATCHED = "dispatched"  # 已派遣
    ACCEPTED = "accepted"  # 已签收
    RESOLVED = "resolved"  # 已办结 (处置反馈)
    CLOSED = "closed"  # 已结案
    REJECTED = "rejected"  # 已退单
    TRIAGE = "triage"  # 待人工分拨
    REOPENED = "reopened"  # 返工 / 重办


class Action(StrEnum):
    """What an actor asks to do to a case (操作)."""

    DISPATCH = "dispatch"  # 派遣 (system / dispatcher)
    TRIAGE = "triage"  # 转人工分拨
    ASSIGN = "assign"  # 手动派遣
    ACCEPT = "accept"  # 签收
    REJECT = "reject"  # 退单
    REQUEST_EXTENSION = "request_extension"  # 延期申请
    DECIDE_EXTENSION = "decide_extension"  # 延期审批
    RULE_REJECTION = "rule_rejection"  # 判定退单
    REASSIGN = "reassign"  # 改派
    RESOLVE = "resolve"  # 办结
    VERIFY = "verify"  # 核查
    CLOSE = "close"  # 结案
    CALLBACK = "callback"  # 回访
    REOPEN = "reopen"  # 重办
    SUPERVISE = "supervise"  # 督办
    ESCALATE = "escalate"  # 吹哨
    REPORT_IN = "report_in"  # 报到
    ADD_COHANDLER = "add_cohandler"  # 增加协办单位
    MARK_OVERDUE = "mark_overdue"  # 超期标记 (system sweep)
    SELF_HANDLE = "self_handle"  # 网格员自办


class Role(StrEnum):
    """Who is acting (角色)."""

    UNIT = "unit"  # 处置单位 (bound to one unit)
    DISPATCHER = "dispatcher"  # 派遣员 / 指挥中心
    TOWNSHIP_ADMIN = "township_admin"  # 乡镇管理员
    HOTLINE = "hotline"  # 12345 系统 (posts 回访 results)
    ADMIN = "admin"  # 管理员: anything a dispatcher or township admin may do
    SYSTEM = "system"  # 系统内部 (auto dispatch, overdue sweep, self-handled reports)


class Satisfaction(StrEnum):
    """Callback satisfaction (回访满意度)."""

    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    UNSATISFIED = "unsatisfied"  # 不满意


STATE_LABELS: Mapping[CaseState, str] = MappingProxyType(
    {
        CaseState.REPORTED: "已上报",
        CaseState.DISPATCHED: "已派遣",
        CaseState.ACCEPTED: "已签收",
        CaseState.RESOLVED: "已办结",
        CaseState.CLOSED: "已结案",
        CaseState.REJECTED: "已退单",
        CaseState.TRIAGE: "待人工分拨",
        CaseState.REOPENED: "返工/重办",
    }
)

#: Open cases (未结案): everything but ``closed``.
OPEN_STATES: frozenset[CaseState] = frozenset(CaseState) - {CaseState.CLOSED}
#: States in which the 办结 deadline runs (超期 can be flagged): open and not yet resolved.
_RUNNING_STATES: frozenset[CaseState] = OPEN_STATES - {CaseState.RESOLVED}

RefusalKind: TypeAlias = Literal["conflict", "not_allowed", "forbidden", "invalid"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: Free text that must say something (reason 原因, result 结果): stripped, non-empty.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
#: Optional note (备注).
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
#: Unit / department identifier (单位编码).
UnitId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


# --------------------------------------------------------------------------- actor and snapshot


@dataclass(frozen=True)
class Actor:
    """Who acts (操作人): role, bound unit (for ``unit``), bound township (``*`` = whole county)."""

    role: Role
    unit: str | None = None
    township: str | None = None
    id: str | None = None


class Rejection(BaseModel):
    """One 退单 by a unit, and the dispatcher's ruling on it (判定退单: valid 有效 / invalid 无效)."""

    model_config = _FROZEN

    unit: str
    reason: str
    at: AwareDatetime
    valid: bool | None = None  # None = not ruled yet


class ExtensionRequest(BaseModel):
    """A pending 延期申请."""

    model_config = _FROZEN

    new_deadline: AwareDatetime
    reason: str
    requested_at: AwareDatetime


class Escalation(BaseModel):
    """The current 吹哨: the county department called in, and its 报到 (acknowledgement)."""

    model_config = _FROZEN

    department: str
    reason: str
    escalated_at: AwareDatetime
    reported_in_at: AwareDatetime | None = None

    @property
    def pending(self) -> bool:
        """True while the department has not reported in (待报到)."""
        return self.reported_in_at is None


class CaseSnapshot(BaseModel):
    """Everything the lifecycle rules need to know about a case (案件快照). Immutable.

    ``version`` starts at 1 when the case is created (立案) and grows by one per transition.
    """

    model_config = _FROZEN

    id: str
    township: str  # 乡镇 (行政区划代码)
    source: str  # 来源: "12345" | "cityops" | "gridworker"
    reported_at: AwareDatetime  # 上报时间
    state: CaseState = CaseState.REPORTED
    version: int = 1
    matter: str | None = None  # 事项
    primary_unit: str | None = None  # 主办单位
    cohandlers: tuple[str, ...] = ()  # 协办单位
    deadline: AwareDatetime | None = None  # 办结期限 in force (after approved extensions)
    overdue: bool = False  # 超期 flag
    reject_window_ends_at: AwareDatetime | None = None  # 退单时限 (computed elsewhere)
    rejections: tuple[Rejection, ...] = ()  # 退单记录
    rework_count: int = 0  # 返工次数 (核查不通过)
    reopen_count: int = 0  # 重办次数 (回访不满意后)
    extension_pending: ExtensionRequest | None = None  # 待审批的延期申请
    extension_count: int = 0  # 已批准延期次数
    verification_passed: bool | None = None  # last 核查 result since the last 办结
    supervise_count: int = 0  # 督办次数
    escalation: Escalation | None = None  # current 吹哨
    escalation_count: int = 0  # 吹哨次数
    satisfaction: Satisfaction | None = None  # 回访满意度 of the current closure
    solved: bool | None = None  # 回访: 是否解决
    callback_count: int = 0  # 回访次数
    self_handled: bool = False  # 自办
    handler: str | None = None  # 自办网格员
    last_transition_at: AwareDatetime | None = None  # time of the last transition

    @property
    def rejected_by(self) -> tuple[str, ...]:
        """Units that rejected the case (退单单位), in order, each once."""
        return tuple(dict.fromkeys(r.unit for r in self.rejections))

    @property
    def rejection_count(self) -> int:
        """Number of 退单."""
        return len(self.rejections)

    @property
    def is_open(self) -> bool:
        """Not yet 结案."""
        return self.state in OPEN_STATES

    @property
    def escalation_department(self) -> str | None:
        """County department of the current 吹哨, if any."""
        return self.escalation.department if self.escalation else None

    @property
    def previous_at(self) -> datetime:
        """Time of the previous transition (or of the report): no transition may be earlier."""
        return self.last_transition_at or self.reported_at


# --------------------------------------------------------------------------- action bodies


class ActionBody(NulFreeModel):
    """Common body (请求体): optimistic-concurrency version and optional historical time."""

    model_config = _FROZEN

    expected_version: int
    occurred_at: AwareDatetime | None = None  # history import (历史导入): when it really happened


class DispatchBody(ActionBody):
    """派遣 (system / dispatcher): initial assignment, or re-dispatch after a 退单."""

    unit: UnitId
    deadline: AwareDatetime
    reject_window_ends_at: AwareDatetime | None = None


class TriageBody(ActionBody):
    """转人工分拨: unlocated, uncategorised or rejected too often."""

    reason: Text


class AssignBody(ActionBody):
    """手动派遣 from triage: a recorded manual decision."""

    unit: UnitId
    reason: Text
    matter: str | None = None
    deadline: AwareDatetime | None = None
    reject_window_ends_at: AwareDatetime | None = None


class AcceptBody(ActionBody):
    """签收."""


class RejectBody(ActionBody):
    """退单: the unit says the case is not theirs."""

    reason: Text


class RequestExtensionBody(ActionBody):
    """延期申请."""

    new_deadline: AwareDatetime
    reason: Text


class DecideExtensionBody(ActionBody):
    """延期审批."""

    approved: bool
    note: Note = ""


class RuleRejectionBody(ActionBody):
    """判定退单: was the latest unruled 退单 (of ``unit``, if given) valid?"""

    valid: bool
    note: Note = ""
    unit: UnitId | None = None


class ReassignBody(ActionBody):
    """改派."""

    unit: UnitId
    reason: Text
    deadline: AwareDatetime | None = None
    reject_window_ends_at: AwareDatetime | None = None


class ResolveBody(ActionBody):
    """办结 (处置反馈): result text and photo references."""

    result: Text
    photos: tuple[str, ...] = ()


class VerifyBody(ActionBody):
    """核查: passed → 结案; failed → 返工."""

    passed: bool
    note: Note = ""


class CloseBody(ActionBody):
    """结案."""

    note: Note = ""


class CallbackBody(ActionBody):
    """回访 result from the 12345 system."""

    satisfaction: Satisfaction
    solved: bool
    note: Note = ""


class ReopenBody(ActionBody):
    """重办 after an unsatisfied 回访; optionally with a new deadline."""

    reason: Text
    deadline: AwareDatetime | None = None


class SuperviseBody(ActionBody):
    """督办: notifies the unit; recorded and counted."""

    note: Text


class EscalateBody(ActionBody):
    """吹哨: call a county department in."""

    department: UnitId
    reason: Text


class ReportInBody(ActionBody):
    """报到: the called department acknowledges."""

    note: Note = ""


class AddCohandlerBody(ActionBody):
    """增加协办单位."""

    unit: UnitId


class MarkOverdueBody(ActionBody):
    """超期标记 by the sweep."""


class SelfHandleBody(ActionBody):
    """自办: a grid worker handled it on the spot."""

    handler: str | None = None
    note: Note = ""


# --------------------------------------------------------------------------- results and timeline


class TimelineEntry(BaseModel):
    """One recorded transition (案件时间线): who, when, what was asked, what changed.

    ``changes`` maps snapshot fields to their new JSON values (the first entry,
    ``case.reported``, holds the whole snapshot), so :func:`replay` can rebuild the case.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: str
    version: int  # case version after this entry
    event_type: str
    action: Action | None  # None only for the creation entry
    actor: Actor
    at: AwareDatetime
    body: dict[str, Any] = {}
    changes: dict[str, Any]


@dataclass(frozen=True)
class Refused:
    """The transition was refused (拒绝): why, and where the case stands."""

    kind: RefusalKind
    reason: str
    current_state: CaseState
    current_version: int


@dataclass(frozen=True)
class Applied:
    """The transition happened: the new snapshot, the event to publish and what changed."""

    new_case: CaseSnapshot
    event_type: str
    changes: dict[str, Any]
    action: Action
    body: ActionBody
    actor: Actor
    at: datetime

    def to_entry(self) -> TimelineEntry:
        """The timeline entry (时间线记录) to store with the new version."""
        return TimelineEntry(
            case_id=self.new_case.id,
            version=self.new_case.version,
            event_type=self.event_type,
            action=self.action,
            actor=self.actor,
            at=self.at,
            body=self.body.model_dump(mode="json"),
            changes=self.changes,
        )


TransitionResult: TypeAlias = Applied | Refused

Precondition = Callable[[CaseSnapshot, datetime], str | None]
Validator = Callable[[CaseSnapshot, Any, datetime], str | None]
Effect = Callable[[CaseSnapshot, Any, Actor, datetime], dict[str, Any]]
Target = CaseState | Callable[[CaseSnapshot, Any], CaseState] | None
EventType = str | Callable[[Any], str]


def _no_precondition(case: CaseSnapshot, at: datetime) -> str | None:
    return None


def _no_validation(case: CaseSnapshot, body: Any, at: datetime) -> str | None:
    return None


def _no_effect(case: CaseSnapshot, body: Any, actor: Actor, at: datetime) -> dict[str, Any]:
    return {}


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
    precondition: Precondition = _no_precondition
    validate: Validator = _no_validation
    effect: Effect = _no_effect
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


# --------------------------------------------------------------------------- helpers for the rules


def _blocked_units(case: CaseSnapshot) -> set[str]:
    """Units a case may not be sent back to: they rejected it and no ruling declared that invalid."""
    return {r.unit for r in case.rejections if r.valid is not False}


def _latest_unruled(case: CaseSnapshot, unit: str | None = None) -> int | None:
    for i in range(len(case.rejections) - 1, -1, -1):
        r = case.rejections[i]
        if r.valid is None and (unit is None or r.unit == unit):
            return i
    return None


def _check_new_unit(case: CaseSnapshot, unit: str, deadline: datetime | None, at: datetime) -> str | None:
    if unit in _blocked_units(case):
        return f"单位 {unit} 已退单，不能再派给它 / unit {unit} rejected this case and may not get it back"
    if deadline is not None and deadline <= at:
        return "办结期限必须晚于派遣时间 / deadline must be after the dispatch time"
    return None


def _without(units: tuple[str, ...], unit: str | None) -> tuple[str, ...]:
    return tuple(u for u in units if u != unit)


# --- dispatch 派遣 / assign 手动派遣 / reassign 改派 / triage 转人工


def _validate_dispatch(case: CaseSnapshot, body: DispatchBody, at: datetime) -> str | None:
    return _check_new_unit(case, body.unit, body.deadline, at)


def _effect_dispatch(case: CaseSnapshot, body: DispatchBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {
        "primary_unit": body.unit,
        "deadline": body.deadline,
        "reject_window_ends_at": body.reject_window_ends_at,
    }


def _effect_triage(case: CaseSnapshot, body: TriageBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"primary_unit": None, "reject_window_ends_at": None}


def _validate_assign(case: CaseSnapshot, body: AssignBody, at: datetime) -> str | None:
    return _check_new_unit(case, body.unit, body.deadline, at)


def _effect_assign(case: CaseSnapshot, body: AssignBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {
        "primary_unit": body.unit,
        "matter": body.matter if body.matter is not None else case.matter,
        "deadline": body.deadline if body.deadline is not None else case.deadline,
        "reject_window_ends_at": body.reject_window_ends_at,
    }


def _validate_reassign(case: CaseSnapshot, body: ReassignBody, at: datetime) -> str | None:
    if body.unit == case.primary_unit:
        return f"案件已由 {body.unit} 主办 / {body.unit} is already the primary unit"
    return _check_new_unit(case, body.unit, body.deadline, at)


def _effect_reassign(case: CaseSnapshot, body: ReassignBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {
        "primary_unit": body.unit,
        "deadline": body.deadline if body.deadline is not None else case.deadline,
        "reject_window_ends_at": body.reject_window_ends_at,
    }


# --- reject 退单 / rule_rejection 判定退单


def _pre_reject(case: CaseSnapshot, at: datetime) -> str | None:
    if case.reject_window_ends_at is not None and at > case.reject_window_ends_at:
        ends = case.reject_window_ends_at.isoformat()
        return f"退单时限已过 ({ends}) / the window for rejecting this case has passed"
    return None


def _effect_reject(case: CaseSnapshot, body: RejectBody, actor: Actor, at: datetime) -> dict[str, Any]:
    assert case.primary_unit is not None  # guaranteed by the scope check
    rejection = Rejection(unit=case.primary_unit, reason=body.reason, at=at)
    return {
        "rejections": (*case.rejections, rejection),
        "primary_unit": None,
        "reject_window_ends_at": None,
    }


def _pre_rule_rejection(case: CaseSnapshot, at: datetime) -> str | None:
    if _latest_unruled(case) is None:
        return "没有待判定的退单 / no rejection awaits a ruling"
    return None


def _validate_rule_rejection(case: CaseSnapshot, body: RuleRejectionBody, at: datetime) -> str | None:
    if body.unit is not None and _latest_unruled(case, body.unit) is None:
        return f"单位 {body.unit} 没有待判定的退单 / unit {body.unit} has no rejection awaiting a ruling"
    return None


def _effect_rule_rejection(
    case: CaseSnapshot, body: RuleRejectionBody, actor: Actor, at: datetime
) -> dict[str, Any]:
    index = _latest_unruled(case, body.unit)
    assert index is not None  # guaranteed by precondition and validation
    rejections = list(case.rejections)
    rejections[index] = rejections[index].model_copy(update={"valid": body.valid})
    return {"rejections": tuple(rejections)}


# --- extensions 延期


def _pre_request_extension(case: CaseSnapshot, at: datetime) -> str | None:
    if case.extension_pending is not None:
        return "已有待审批的延期申请 / an extension request is already pending"
    if case.deadline is None:
        return "案件没有办结期限 / the case has no deadline to extend"
    return None


def _validate_request_extension(case: CaseSnapshot, body: RequestExtensionBody, at: datetime) -> str | None:
    if case.deadline is not None and body.new_deadline <= case.deadline:
        return "新期限必须晚于当前期限 / the new deadline must be after the current one"
    return None


def _effect_request_extension(
    case: CaseSnapshot, body: RequestExtensionBody, actor: Actor, at: datetime
) -> dict[str, Any]:
    request = ExtensionRequest(new_deadline=body.new_deadline, reason=body.reason, requested_at=at)
    return {"extension_pending": request}


def _pre_decide_extension(case: CaseSnapshot, at: datetime) -> str | None:
    if case.extension_pending is None:
        return "没有待审批的延期申请 / no extension request is pending"
    return None


def _effect_decide_extension(
    case: CaseSnapshot, body: DecideExtensionBody, actor: Actor, at: datetime
) -> dict[str, Any]:
    assert case.extension_pending is not None  # guaranteed by the precondition
    if not body.approved:
        return {"extension_pending": None}
    return {
        "extension_pending": None,
        "deadline": case.extension_pending.new_deadline,
        "extension_count": case.extension_count + 1,
    }


def _event_decide_extension(body: DecideExtensionBody) -> str:
    return "case.extended" if body.approved else "case.extension_denied"


# --- resolve 办结 / verify 核查 / close 结案 / callback 回访 / reopen 重办


def _effect_resolve(case: CaseSnapshot, body: ResolveBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"verification_passed": None}


def _target_verify(case: CaseSnapshot, body: VerifyBody) -> CaseState:
    return CaseState.CLOSED if body.passed else CaseState.REOPENED


def _effect_verify(case: CaseSnapshot, body: VerifyBody, actor: Actor, at: datetime) -> dict[str, Any]:
    if body.passed:
        return {"verification_passed": True}
    return {"verification_passed": False, "rework_count": case.rework_count + 1}


def _pre_callback(case: CaseSnapshot, at: datetime) -> str | None:
    if case.source != HOTLINE_SOURCE:
        return f"只有 12345 案件回访 / only 12345 cases get a callback (source: {case.source})"
    if case.satisfaction is not None:
        return "本次结案已回访 / the callback for this closure is already recorded"
    return None


def _effect_callback(case: CaseSnapshot, body: CallbackBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {
        "satisfaction": body.satisfaction,
        "solved": body.solved,
        "callback_count": case.callback_count + 1,
    }


def _pre_reopen(case: CaseSnapshot, at: datetime) -> str | None:
    if case.satisfaction is not Satisfaction.UNSATISFIED:
        return "只有回访不满意的案件可以重办 / only a case with an unsatisfied callback can be reopened"
    return None


def _validate_reopen(case: CaseSnapshot, body: ReopenBody, at: datetime) -> str | None:
    if body.deadline is not None and body.deadline <= at:
        return "重办期限必须晚于重办时间 / the new deadline must be in the future"
    return None


def _effect_reopen(case: CaseSnapshot, body: ReopenBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {
        "reopen_count": case.reopen_count + 1,
        "satisfaction": None,
        "solved": None,
        "verification_passed": None,
        "deadline": body.deadline if body.deadline is not None else case.deadline,
    }


# --- supervise 督办 / escalate 吹哨 / report_in 报到 / add_cohandler 协办 / overdue 超期 / 自办


def _effect_supervise(case: CaseSnapshot, body: SuperviseBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"supervise_count": case.supervise_count + 1}


def _pre_escalate(case: CaseSnapshot, at: datetime) -> str | None:
    if case.escalation is not None and case.escalation.pending:
        return (
            f"已吹哨 {case.escalation.department}，尚未报到 / "
            f"already escalated to {case.escalation.department}, not reported in yet"
        )
    return None


def _effect_escalate(case: CaseSnapshot, body: EscalateBody, actor: Actor, at: datetime) -> dict[str, Any]:
    escalation = Escalation(department=body.department, reason=body.reason, escalated_at=at)
    return {"escalation": escalation, "escalation_count": case.escalation_count + 1}


def _pre_report_in(case: CaseSnapshot, at: datetime) -> str | None:
    if case.escalation is None or not case.escalation.pending:
        return "没有待报到的吹哨 / no escalation awaits a report-in"
    return None


def _effect_report_in(case: CaseSnapshot, body: ReportInBody, actor: Actor, at: datetime) -> dict[str, Any]:
    assert case.escalation is not None  # guaranteed by the precondition
    return {"escalation": case.escalation.model_copy(update={"reported_in_at": at})}


def _validate_add_cohandler(case: CaseSnapshot, body: AddCohandlerBody, at: datetime) -> str | None:
    if body.unit == case.primary_unit:
        return f"{body.unit} 是主办单位 / {body.unit} is the primary unit"
    if body.unit in case.cohandlers:
        return f"{body.unit} 已是协办单位 / {body.unit} is already a co-handler"
    return None


def _effect_add_cohandler(
    case: CaseSnapshot, body: AddCohandlerBody, actor: Actor, at: datetime
) -> dict[str, Any]:
    return {"cohandlers": (*case.cohandlers, body.unit)}


def _pre_mark_overdue(case: CaseSnapshot, at: datetime) -> str | None:
    if case.overdue:
        return "已标记超期 / already flagged overdue"
    if case.deadline is None:
        return "案件没有办结期限 / the case has no deadline"
    if at <= case.deadline:
        return "尚未超过办结期限 / the deadline has not passed"
    return None


def _effect_mark_overdue(
    case: CaseSnapshot, body: MarkOverdueBody, actor: Actor, at: datetime
) -> dict[str, Any]:
    return {"overdue": True}


def _effect_self_handle(
    case: CaseSnapshot, body: SelfHandleBody, actor: Actor, at: datetime
) -> dict[str, Any]:
    return {"self_handled": True, "handler": body.handler}


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
        validate=_validate_dispatch, effect=_effect_dispatch,
        notes="never to a unit that rejected the case (see after_rejection)",
    ),
    TransitionSpec(
        Action.TRIAGE, "转人工分拨", _states(_S.REPORTED, _S.REJECTED), frozenset({_R.SYSTEM, *_DISPATCHERS}),
        TriageBody, _S.TRIAGE, "case.triage_required", effect=_effect_triage,
    ),
    TransitionSpec(
        Action.ASSIGN, "手动派遣", _states(_S.TRIAGE, _S.REPORTED), _DISPATCHERS,
        AssignBody, _S.DISPATCHED, "case.assigned", validate=_validate_assign, effect=_effect_assign,
    ),
    TransitionSpec(
        Action.ACCEPT, "签收", _states(_S.DISPATCHED), frozenset({_R.UNIT}),
        AcceptBody, _S.ACCEPTED, "case.accepted",
    ),
    TransitionSpec(
        Action.REJECT, "退单", _states(_S.DISPATCHED, _S.ACCEPTED), frozenset({_R.UNIT}),
        RejectBody, _S.REJECTED, "case.rejected", precondition=_pre_reject, effect=_effect_reject,
        notes="only within reject_window_ends_at",
    ),
    TransitionSpec(
        Action.REQUEST_EXTENSION, "延期申请", _states(_S.ACCEPTED), frozenset({_R.UNIT}),
        RequestExtensionBody, None, "case.extension_requested",
        precondition=_pre_request_extension, validate=_validate_request_extension,
        effect=_effect_request_extension,
    ),
    TransitionSpec(
        Action.DECIDE_EXTENSION, "延期审批", _states(_S.ACCEPTED), _DISPATCHERS,
        DecideExtensionBody, None, _event_decide_extension,
        precondition=_pre_decide_extension, effect=_effect_decide_extension,
    ),
    TransitionSpec(
        Action.RULE_REJECTION, "判定退单", frozenset(CaseState) - {_S.REPORTED}, _DISPATCHERS,
        RuleRejectionBody, None, "case.rejection_ruled",
        precondition=_pre_rule_rejection, validate=_validate_rule_rejection, effect=_effect_rule_rejection,
    ),
    TransitionSpec(
        Action.REASSIGN, "改派",
        _states(_S.DISPATCHED, _S.ACCEPTED, _S.REJECTED, _S.REOPENED, _S.TRIAGE), _DISPATCHERS,
        ReassignBody, _S.DISPATCHED, "case.reassigned", validate=_validate_reassign, effect=_effect_reassign,
    ),
    TransitionSpec(
        Action.RESOLVE, "办结", _states(_S.ACCEPTED, _S.REOPENED), frozenset({_R.UNIT}),
        ResolveBody, _S.RESOLVED, "case.resolved", effect=_effect_resolve,
        notes="primary unit only, never a co-handler",
    ),
    TransitionSpec(
        Action.VERIFY, "核查", _states(_S.RESOLVED), _DISPATCHERS,
        VerifyBody, _target_verify, "case.verified", effect=_effect_verify,
        notes="passed → closed; failed → reopened, rework_count + 1",
    ),
    TransitionSpec(
        Action.CLOSE, "结案", _states(_S.RESOLVED), _DISPATCHERS,
        CloseBody, _S.CLOSED, "case.closed",
    ),
    TransitionSpec(
        Action.CALLBACK, "回访", _states(_S.CLOSED), frozenset({_R.HOTLINE, *_DISPATCHERS}),
        CallbackBody, None, "case.callback_recorded", precondition=_pre_callback, effect=_effect_callback,
        notes="12345 cases only, once per closure",
    ),
    TransitionSpec(
        Action.REOPEN, "重办", _states(_S.CLOSED), _DISPATCHERS,
        ReopenBody, _S.REOPENED, "case.reopened",
        precondition=_pre_reopen, validate=_validate_reopen, effect=_effect_reopen,
        notes="after an unsatisfied callback",
    ),
    TransitionSpec(
        Action.SUPERVISE, "督办", OPEN_STATES, _DISPATCHERS,
        SuperviseBody, None, "case.supervised", effect=_effect_supervise,
    ),
    TransitionSpec(
        Action.ESCALATE, "吹哨", OPEN_STATES, frozenset({_R.TOWNSHIP_ADMIN, _R.ADMIN}),
        EscalateBody, None, "case.escalated", precondition=_pre_escalate, effect=_effect_escalate,
    ),
    TransitionSpec(
        Action.REPORT_IN, "报到", frozenset(CaseState), frozenset({_R.UNIT, _R.ADMIN}),
        ReportInBody, None, "case.reported_in", precondition=_pre_report_in, effect=_effect_report_in,
        notes="unit role: only the escalated department",
    ),
    TransitionSpec(
        Action.ADD_COHANDLER, "增加协办", OPEN_STATES, _DISPATCHERS,
        AddCohandlerBody, None, "case.cohandler_added",
        validate=_validate_add_cohandler, effect=_effect_add_cohandler,
    ),
    TransitionSpec(
        Action.MARK_OVERDUE, "超期标记", _RUNNING_STATES, frozenset({_R.SYSTEM}),
        MarkOverdueBody, None, "case.overdue", precondition=_pre_mark_overdue, effect=_effect_mark_overdue,
        notes="refused when already flagged (idempotent sweep)",
    ),
    TransitionSpec(
        Action.SELF_HANDLE, "自办", _states(_S.REPORTED), frozenset({_R.SYSTEM}),
        SelfHandleBody, _S.CLOSED, "case.self_handled", effect=_effect_self_handle,
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
    (the one rule, :func:`shared.visibility.sees_case`).
    """
    return sees_case(
        Viewer.of(actor),
        township=case.township,
        unit=case.primary_unit,
        cohandlers=case.cohandlers,
        escalated_to=case.escalation_department,
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
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
        )
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


def _finish(
    case: CaseSnapshot, spec: TransitionSpec, body: ActionBody, actor: Actor, at: datetime
) -> CaseSnapshot:
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
    # The primary unit is never also a co-handler.
    if new.primary_unit is not None and new.primary_unit in new.cohandlers:
        extra["cohandlers"] = _without(new.cohandlers, new.primary_unit)
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
