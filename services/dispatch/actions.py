"""Lifecycle actions on a stored case 流转：one action under ``SELECT … FOR UPDATE``, with its event.

Nothing here commits (the unit of work does). The service fills what it computes
(deadlines, windows) and checks referenced units before the lifecycle sees the
request; after a 退单 the case is re-dispatched to the next candidate (or triage)
in the same transaction. 不提交；服务层先补全期限与时限、校验单位，再交给状态机；
退单后在同一事务内再派遣（或转人工）。
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.action_bodies import DispatchBody, TriageBody
from services.dispatch.candidates import candidates
from services.dispatch.case_model import Action, Actor, Applied, CaseSnapshot, Refused
from services.dispatch.deadlines import (
    accept_deadline,
    extension_refusal,
    matter_deadline,
    reject_window_ends,
    report_in_deadline,
)
from services.dispatch.follow_ups import create_follow_up
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.identity import SYSTEM_ACTOR
from services.dispatch.lifecycle import after_rejection, apply, can_see
from services.dispatch.records import CaseNotFoundError, CaseRecord
from services.dispatch.routing import RoutingDecision, route
from services.dispatch.staging import Pending, must, stage_applied
from services.dispatch.store import load_for_update, save
from shared.vocabulary import TimeBasis

__all__ = [
    "API_ACTIONS",
    "ActionOutcome",
    "ActionProblem",
    "CaseNotFoundError",
    "act_on_locked",
    "create_follow_up_if_due",
    "follow_up_due",
    "perform_action",
    "stage_action",
]

#: Actions the API exposes on ``POST /v1/cases/{id}/actions/{action}``. API 开放的操作。
API_ACTIONS: tuple[Action, ...] = (
    Action.ACCEPT,
    Action.REJECT,
    Action.REQUEST_EXTENSION,
    Action.DECIDE_EXTENSION,
    Action.RULE_REJECTION,
    Action.REASSIGN,
    Action.RESOLVE,
    Action.VERIFY,
    Action.CLOSE,
    Action.CALLBACK,
    Action.REOPEN,
    Action.SUPERVISE,
    Action.ESCALATE,
    Action.REPORT_IN,
    Action.ADD_COHANDLER,
    Action.ASSIGN,
    Action.MARK_INVALID,
    Action.MARK_FALSE_ALARM,
    Action.RECORD_INSPECTION,
)


@dataclass(frozen=True)
class ActionProblem:
    """A request the service refuses before the lifecycle sees it (→ 409 or 422). 服务层拒绝。"""

    kind: Literal["conflict", "invalid"]
    reason: str
    current_state: str
    current_version: int


@dataclass(frozen=True)
class ActionOutcome:
    """Result of :func:`perform_action`: the final record and what happened. 流转结果。"""

    record: CaseRecord | None
    applied: tuple[Applied, ...] = ()
    refused: Refused | ActionProblem | None = None


def _matter_deadline(
    loaded: LoadedJurisdiction, matter_code: str | None, urgency: str, at: datetime
) -> tuple[datetime | None, TimeBasis | None, bool]:
    """:func:`deadlines.matter_deadline` of the matter ``matter_code`` in the jurisdiction. 事项办结期限。"""
    matter = loaded.snapshot.matter(matter_code) if matter_code else None
    return matter_deadline(loaded.calendar, matter, urgency, at)


def _unit_kind(loaded: LoadedJurisdiction | None, unit_id: str | None, fallback: str | None = None) -> str | None:
    if unit_id is None:
        return None
    unit = loaded.snapshot.unit(unit_id) if loaded is not None else None
    return unit.kind if unit is not None else fallback


def _unit_problem(loaded: LoadedJurisdiction | None, unit: Any, record: CaseRecord, what: str) -> ActionProblem | None:
    if not isinstance(unit, str) or loaded is None:
        return None
    if loaded.snapshot.unit(unit.strip()) is None:
        return ActionProblem(
            "invalid", f"未知单位 {unit} / unknown {what} {unit!r}", str(record.snapshot.state), record.snapshot.version
        )
    return None


def _aware_or_none(value: Any) -> datetime | None:
    """A timezone-aware datetime from the body, or None (the lifecycle then says what is wrong)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else None


def _prepare_body(
    action: Action,
    body: dict[str, Any],
    record: CaseRecord,
    loaded: LoadedJurisdiction | None,
    at: datetime,
) -> dict[str, Any] | ActionProblem:
    """Fill what the service computes (windows, deadlines) and check referenced units. 补全并校验请求体。"""
    body = dict(body)
    if action in (Action.REASSIGN, Action.ASSIGN, Action.ADD_COHANDLER):
        problem = _unit_problem(loaded, body.get("unit"), record, "unit")
        if problem is not None:
            return problem
    if action is Action.ESCALATE:
        department = body.get("department")
        if isinstance(department, str) and loaded is not None:
            unit = loaded.snapshot.unit(department.strip())
            if unit is None or unit.kind != "county_department":
                return ActionProblem(
                    "invalid",
                    f"{department} 不是县级部门 / {department!r} is not a county department",
                    str(record.snapshot.state),
                    record.snapshot.version,
                )
    if action is Action.ASSIGN and loaded is not None:
        matter = body.get("matter")
        if isinstance(matter, str) and loaded.snapshot.matter(matter) is None:
            return ActionProblem(
                "invalid", f"未知事项 {matter} / unknown matter", str(record.snapshot.state), record.snapshot.version
            )
        if body.get("deadline") is None:
            deadline, _, _ = _matter_deadline(loaded, matter or record.snapshot.matter, record.urgency, at)
            if deadline is not None:
                body["deadline"] = deadline.isoformat()
    if action is Action.REOPEN and loaded is not None and body.get("deadline") is None:
        # 重办 gets a fresh deadline of the matter from the reopening time. 重办按事项时限重新起算。
        deadline, _, _ = _matter_deadline(loaded, record.snapshot.matter, record.urgency, at)
        if deadline is not None:
            body["deadline"] = deadline.isoformat()
    if action is Action.REQUEST_EXTENSION and loaded is not None and record.snapshot.deadline is not None:
        requested = _aware_or_none(body.get("new_deadline"))
        refusal = (
            extension_refusal(loaded.calendar, record.snapshot.deadline, requested) if requested is not None else None
        )
        if refusal is not None:
            return ActionProblem("invalid", refusal, str(record.snapshot.state), record.snapshot.version)
    if action in (Action.ASSIGN, Action.REASSIGN) and loaded is not None and body.get("reject_window_ends_at") is None:
        body["reject_window_ends_at"] = reject_window_ends(loaded.calendar, at).isoformat()
    return body


def _after_unit_change(
    record: CaseRecord, new_case: CaseSnapshot, loaded: LoadedJurisdiction | None, at: datetime
) -> None:
    """New primary unit: its kind, dispatch time, 签收期限 (before the event is staged). 主办单位变更后的派生字段。"""
    s = new_case
    record.unit_kind = _unit_kind(loaded, s.primary_unit, record.unit_kind)
    if record.dispatched_at is None:
        record.dispatched_at = at
    if loaded is not None:
        record.accept_deadline = accept_deadline(loaded.calendar, at, s.deadline)


def _redispatch(
    *,
    record: CaseRecord,
    pending: Pending,
    loaded: LoadedJurisdiction | None,
    at: datetime,
    max_rejections: int,
    correlation_id: str,
) -> list[Applied]:
    """After a 退单: the next candidate never in ``rejected_by``, or triage. 退单后再派遣或转人工。"""
    case = record.snapshot
    event = record.event_model()
    decision: RoutingDecision | None = None
    listed: list[str] = []
    if loaded is not None:
        listed = [c.unit for c in candidates(event, loaded.snapshot, matter=case.matter) if c.unit]
        decision = route(
            event,
            loaded.snapshot,
            now=at,
            calendar=loaded.calendar,
            exclude_units=frozenset(case.rejected_by),
            matter=case.matter,
        )
    verdict, detail = after_rejection(case, listed, max_rejections)
    if verdict == "dispatch" and decision is not None and decision.outcome == "dispatch" and decision.unit == detail:
        assert decision.deadline is not None
        body = DispatchBody(
            expected_version=case.version,
            unit=decision.unit,
            deadline=decision.deadline,
            reject_window_ends_at=decision.reject_window_ends_at,
        )
        result = apply(case, Action.DISPATCH, body, SYSTEM_ACTOR, at)
        if isinstance(result, Applied):
            record.time_basis = decision.time_basis
            record.provisional = decision.provisional
            record.decided_by = decision.decided_by
            record.rules_version = decision.rules_version
            record.jurisdiction_version = decision.jurisdiction_version
            record.explanation = {
                **record.explanation,
                "redispatches": [
                    *record.explanation.get("redispatches", []),
                    {"at": at.isoformat(), "unit": decision.unit, "explanation_zh": decision.explanation_zh},
                ],
            }
            _after_unit_change(record, result.new_case, loaded, at)
            stage_applied(
                pending, record, result, correlation_id=correlation_id, extra={"reason": decision.explanation_zh}
            )
            return [result]
    if verdict == "triage":
        reason = detail
    else:
        reason = (decision.triage_reason if decision is not None else None) or "no_candidate_left"
    record.triage_reason = reason
    body_t = TriageBody(expected_version=case.version, reason=reason)
    triage = must(apply(case, Action.TRIAGE, body_t, SYSTEM_ACTOR, at))
    stage_applied(pending, record, triage, correlation_id=correlation_id)
    return [triage]


def _effective_time(occurred: Any, now: datetime) -> datetime:
    """``occurred_at`` of a body when it parses as an aware time not after ``now``, else ``now``. 生效时间。"""
    if isinstance(occurred, datetime):
        parsed: datetime | None = occurred
    elif isinstance(occurred, str) and occurred:
        try:
            parsed = datetime.fromisoformat(occurred)
        except ValueError:
            parsed = None
    else:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return now
    return min(parsed, now)


def _merged_refusal(record: CaseRecord) -> ActionProblem:
    """No action applies to a merged report. 并案件不可操作。"""
    return ActionProblem(
        "conflict",
        f"案件已并入 {record.merged_into} / the case was merged into {record.merged_into}",
        str(record.snapshot.state),
        record.snapshot.version,
    )


def _record_manual_decision(
    record: CaseRecord,
    result: Applied,
    actor: Actor,
    prepared: dict[str, Any],
    jurisdiction: LoadedJurisdiction | None,
) -> None:
    """A 手动派遣: the matter's facts, ``decided_by = manual`` and the decision in the explanation. 记录手动派遣。"""
    matter = result.new_case.matter
    if jurisdiction is not None and matter is not None:
        m = jurisdiction.snapshot.matter(matter)
        record.matter_group = m.group if m else record.matter_group
        _, basis, provisional = _matter_deadline(jurisdiction, matter, record.urgency, result.at)
        record.time_basis = basis or record.time_basis
        record.provisional = provisional
    record.triage_reason = None
    record.decided_by = "manual"
    record.explanation = {
        **record.explanation,
        "manual_decisions": [
            *record.explanation.get("manual_decisions", []),
            {
                "at": result.at.isoformat(),
                "by": actor.id,
                "role": str(actor.role),
                "unit": prepared.get("unit"),
                "matter": matter,
                "reason": prepared.get("reason"),
            },
        ],
    }


async def perform_action(
    *,
    session: AsyncSession,
    case_id: uuid.UUID,
    action: Action,
    body: dict[str, Any],
    actor: Actor,
    now: datetime,
    jurisdiction: LoadedJurisdiction | None,
    max_rejections: int,
    correlation_id: str,
) -> ActionOutcome:
    """One lifecycle action on a case, locked ``FOR UPDATE``, stored with its event. 执行一次流转。

    Raises :class:`CaseNotFoundError` when the case does not exist or the actor
    may not see it. After a 退单 the case is re-dispatched in the same transaction.
    案件不存在或不可见时抛出 :class:`CaseNotFoundError`；退单后同一事务内再派遣。
    """
    record = await load_for_update(session, case_id)
    if record is None or not can_see(record.snapshot, actor):
        raise CaseNotFoundError(str(case_id))
    return await act_on_locked(
        session=session,
        record=record,
        action=action,
        body=body,
        actor=actor,
        now=now,
        jurisdiction=jurisdiction,
        max_rejections=max_rejections,
        correlation_id=correlation_id,
    )


async def act_on_locked(
    *,
    session: AsyncSession,
    record: CaseRecord,
    action: Action,
    body: dict[str, Any],
    actor: Actor,
    now: datetime,
    jurisdiction: LoadedJurisdiction | None,
    max_rejections: int,
    correlation_id: str,
) -> ActionOutcome:
    """One lifecycle action on a case the caller has locked ``FOR UPDATE`` and found visible to
    ``actor``, written: :func:`stage_action`, the case row and its transitions saved, then the
    follow-up task a 整改 inspection calls for. 对已加锁且可见的案件执行一次流转并写库。"""
    pending = Pending()
    outcome = stage_action(
        record=record,
        action=action,
        body=body,
        actor=actor,
        now=now,
        jurisdiction=jurisdiction,
        max_rejections=max_rejections,
        correlation_id=correlation_id,
        pending=pending,
    )
    if outcome.refused is None:
        await save(session, record, pending)
        await create_follow_up_if_due(
            session=session, outcome=outcome, action=action, jurisdiction=jurisdiction, correlation_id=correlation_id
        )
    return outcome


def stage_action(
    *,
    record: CaseRecord,
    action: Action,
    body: dict[str, Any],
    actor: Actor,
    now: datetime,
    jurisdiction: LoadedJurisdiction | None,
    max_rejections: int,
    correlation_id: str,
    pending: Pending,
) -> ActionOutcome:
    """One lifecycle action applied to ``record`` in memory, its transitions (and a 退单's re-dispatch)
    queued on ``pending``; no I/O. The caller writes the record and ``pending`` (:func:`save`), then
    calls :func:`create_follow_up_if_due`. 在内存中执行一次流转并暂存（无 I/O），由调用方写库。"""
    if record.merged_into is not None:
        return ActionOutcome(record, refused=_merged_refusal(record))
    at = _effective_time(body.get("occurred_at"), now)
    prepared = _prepare_body(action, body, record, jurisdiction, at)
    if isinstance(prepared, ActionProblem):
        return ActionOutcome(record, refused=prepared)
    result = apply(record.snapshot, action, prepared, actor, now)
    if isinstance(result, Refused):
        return ActionOutcome(record, refused=result)
    done: list[Applied] = [result]
    if action is Action.ESCALATE and jurisdiction is not None:
        record.accept_deadline = report_in_deadline(jurisdiction.calendar, result.at)
    if action is Action.ASSIGN:
        _record_manual_decision(record, result, actor, prepared, jurisdiction)
    if action in (Action.ASSIGN, Action.REASSIGN):
        _after_unit_change(record, result.new_case, jurisdiction, result.at)
    stage_applied(pending, record, result, correlation_id=correlation_id)
    if action is Action.REJECT:
        done += _redispatch(
            record=record,
            pending=pending,
            loaded=jurisdiction,
            at=result.at,
            max_rejections=max_rejections,
            correlation_id=correlation_id,
        )
    return ActionOutcome(record, applied=tuple(done))


def follow_up_due(outcome: ActionOutcome, action: Action) -> bool:
    """Whether an applied action calls for a 整改复查 task (an inspection found ``rectify``). 是否需生成复查任务。"""
    return (
        action is Action.RECORD_INSPECTION
        and outcome.refused is None
        and bool(outcome.applied)
        and outcome.applied[0].new_case.inspection_result == "rectify"
    )


async def create_follow_up_if_due(
    *,
    session: AsyncSession,
    outcome: ActionOutcome,
    action: Action,
    jurisdiction: LoadedJurisdiction | None,
    correlation_id: str,
) -> None:
    """The 整改复查 task of an inspection that found ``rectify``, once the parent is written. 生成复查任务。"""
    if jurisdiction is not None and outcome.record is not None and follow_up_due(outcome, action):
        await create_follow_up(
            session=session,
            parent=outcome.record,
            inspected=outcome.applied[0],
            jurisdiction=jurisdiction,
            correlation_id=correlation_id,
        )
