"""What each case action checks and changes (各操作的前置条件、校验与效果) — the cells of the
transition table in :mod:`services.dispatch.lifecycle`.

Per action, at most three pure functions: a *precondition* on the case alone (``pre_…``,
refusal ``not_allowed``), a *validation* of the body against the case (``validate_…``,
refusal ``invalid``) and an *effect* (``effect_…``): the snapshot fields the transition
changes besides state, version and time. Pure: no I/O, no clock.
每个操作至多三个纯函数：前置条件、请求体校验、效果（状态/版本/时间以外的字段变化）。
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.dispatch.action_bodies import (
    AddCohandlerBody,
    AssignBody,
    AssignMemberBody,
    CallbackBody,
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
    HOTLINE_SOURCE,
    Actor,
    CaseSnapshot,
    CaseState,
    Escalation,
    ExtensionRequest,
    Rejection,
    Satisfaction,
)
from services.dispatch.deadlines import MAX_EXTENSIONS


def no_precondition(case: CaseSnapshot, at: datetime) -> str | None:
    """The default: the case alone never stops the action. 默认：无前置条件。"""
    return None


def no_validation(case: CaseSnapshot, body: Any, at: datetime) -> str | None:
    """The default: the body is not checked against the case. 默认：无校验。"""
    return None


def no_effect(case: CaseSnapshot, body: Any, actor: Actor, at: datetime) -> dict[str, Any]:
    """The default: only state, version and time change. 默认：仅状态、版本与时间变化。"""
    return {}


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


def without(units: tuple[str, ...], unit: str | None) -> tuple[str, ...]:
    """``units`` less ``unit``, in order. 去掉某单位后的单位列表。"""
    return tuple(u for u in units if u != unit)


# --- dispatch 派遣 / assign 手动派遣 / reassign 改派 / triage 转人工


def validate_dispatch(case: CaseSnapshot, body: DispatchBody, at: datetime) -> str | None:
    return _check_new_unit(case, body.unit, body.deadline, at)


def effect_dispatch(case: CaseSnapshot, body: DispatchBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {
        "primary_unit": body.unit,
        "deadline": body.deadline,
        "reject_window_ends_at": body.reject_window_ends_at,
    }


def effect_triage(case: CaseSnapshot, body: TriageBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"primary_unit": None, "reject_window_ends_at": None}


def validate_assign(case: CaseSnapshot, body: AssignBody, at: datetime) -> str | None:
    return _check_new_unit(case, body.unit, body.deadline, at)


def effect_assign(case: CaseSnapshot, body: AssignBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {
        "primary_unit": body.unit,
        "matter": body.matter if body.matter is not None else case.matter,
        "deadline": body.deadline if body.deadline is not None else case.deadline,
        "reject_window_ends_at": body.reject_window_ends_at,
    }


def validate_assign_member(case: CaseSnapshot, body: AssignMemberBody, at: datetime) -> str | None:
    if not body.members:
        return "派单对象没有队员 / the assignee has no members"
    if body.assignee == case.assignee and tuple(body.members) == case.assignees:
        return f"案件已派给 {body.assignee} / the case is already assigned to {body.assignee}"
    return None


def effect_assign_member(case: CaseSnapshot, body: AssignMemberBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"assignee": body.assignee, "assignee_kind": body.assignee_kind, "assignees": tuple(body.members)}


def validate_reassign(case: CaseSnapshot, body: ReassignBody, at: datetime) -> str | None:
    if body.unit == case.primary_unit:
        return f"案件已由 {body.unit} 主办 / {body.unit} is already the primary unit"
    return _check_new_unit(case, body.unit, body.deadline, at)


def effect_reassign(case: CaseSnapshot, body: ReassignBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {
        "primary_unit": body.unit,
        "deadline": body.deadline if body.deadline is not None else case.deadline,
        "reject_window_ends_at": body.reject_window_ends_at,
    }


# --- reject 退单 / rule_rejection 判定退单


def pre_reject(case: CaseSnapshot, at: datetime) -> str | None:
    if case.reject_window_ends_at is not None and at > case.reject_window_ends_at:
        ends = case.reject_window_ends_at.isoformat()
        return f"退单时限已过 ({ends}) / the window for rejecting this case has passed"
    return None


def effect_reject(case: CaseSnapshot, body: RejectBody, actor: Actor, at: datetime) -> dict[str, Any]:
    assert case.primary_unit is not None  # guaranteed by the scope check
    rejection = Rejection(unit=case.primary_unit, reason=body.reason, at=at)
    return {
        "rejections": (*case.rejections, rejection),
        "primary_unit": None,
        "reject_window_ends_at": None,
    }


def pre_rule_rejection(case: CaseSnapshot, at: datetime) -> str | None:
    if _latest_unruled(case) is None:
        return "没有待判定的退单 / no rejection awaits a ruling"
    return None


def validate_rule_rejection(case: CaseSnapshot, body: RuleRejectionBody, at: datetime) -> str | None:
    if body.unit is not None and _latest_unruled(case, body.unit) is None:
        return f"单位 {body.unit} 没有待判定的退单 / unit {body.unit} has no rejection awaiting a ruling"
    return None


def effect_rule_rejection(
    case: CaseSnapshot, body: RuleRejectionBody, actor: Actor, at: datetime
) -> dict[str, Any]:
    index = _latest_unruled(case, body.unit)
    assert index is not None  # guaranteed by precondition and validation
    rejections = list(case.rejections)
    rejections[index] = rejections[index].model_copy(update={"valid": body.valid})
    return {"rejections": tuple(rejections)}


# --- extensions 延期


def pre_request_extension(case: CaseSnapshot, at: datetime) -> str | None:
    if case.extension_pending is not None:
        return "已有待审批的延期申请 / an extension request is already pending"
    if case.extension_count >= MAX_EXTENSIONS:
        return f"每案最多延期 {MAX_EXTENSIONS} 次 / a case may be extended {MAX_EXTENSIONS} time(s) at most"
    if case.deadline is None:
        return "案件没有办结期限 / the case has no deadline to extend"
    return None


def validate_request_extension(case: CaseSnapshot, body: RequestExtensionBody, at: datetime) -> str | None:
    if case.deadline is not None and body.new_deadline <= case.deadline:
        return "新期限必须晚于当前期限 / the new deadline must be after the current one"
    return None


def effect_request_extension(
    case: CaseSnapshot, body: RequestExtensionBody, actor: Actor, at: datetime
) -> dict[str, Any]:
    request = ExtensionRequest(new_deadline=body.new_deadline, reason=body.reason, requested_at=at)
    return {"extension_pending": request}


def pre_decide_extension(case: CaseSnapshot, at: datetime) -> str | None:
    if case.extension_pending is None:
        return "没有待审批的延期申请 / no extension request is pending"
    return None


def effect_decide_extension(
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


def event_decide_extension(body: DecideExtensionBody) -> str:
    return "case.extended" if body.approved else "case.extension_denied"


# --- resolve 办结 / verify 核查 / close 结案 / callback 回访 / reopen 重办


def effect_resolve(case: CaseSnapshot, body: ResolveBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"verification_passed": None}


def target_verify(case: CaseSnapshot, body: VerifyBody) -> CaseState:
    return CaseState.CLOSED if body.passed else CaseState.REOPENED


def effect_verify(case: CaseSnapshot, body: VerifyBody, actor: Actor, at: datetime) -> dict[str, Any]:
    if body.passed:
        return {"verification_passed": True}
    return {"verification_passed": False, "rework_count": case.rework_count + 1}


def pre_callback(case: CaseSnapshot, at: datetime) -> str | None:
    if case.source != HOTLINE_SOURCE:
        return f"只有 12345 案件回访 / only 12345 cases get a callback (source: {case.source})"
    if case.satisfaction is not None:
        return "本次结案已回访 / the callback for this closure is already recorded"
    return None


def effect_callback(case: CaseSnapshot, body: CallbackBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {
        "satisfaction": body.satisfaction,
        "solved": body.solved,
        "callback_count": case.callback_count + 1,
    }


def pre_reopen(case: CaseSnapshot, at: datetime) -> str | None:
    if case.satisfaction is not Satisfaction.UNSATISFIED:
        return "只有回访不满意的案件可以重办 / only a case with an unsatisfied callback can be reopened"
    return None


def validate_reopen(case: CaseSnapshot, body: ReopenBody, at: datetime) -> str | None:
    if body.deadline is not None and body.deadline <= at:
        return "重办期限必须晚于重办时间 / the new deadline must be in the future"
    return None


def effect_reopen(case: CaseSnapshot, body: ReopenBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {
        "reopen_count": case.reopen_count + 1,
        "satisfaction": None,
        "solved": None,
        "verification_passed": None,
        "deadline": body.deadline if body.deadline is not None else case.deadline,
    }


# --- supervise 督办 / escalate 吹哨 / report_in 报到 / add_cohandler 协办 / overdue 超期 / 自办


def effect_supervise(case: CaseSnapshot, body: SuperviseBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"supervise_count": case.supervise_count + 1}


def pre_escalate(case: CaseSnapshot, at: datetime) -> str | None:
    if case.escalation is not None and case.escalation.pending:
        return (
            f"已吹哨 {case.escalation.department}，尚未报到 / "
            f"already escalated to {case.escalation.department}, not reported in yet"
        )
    return None


def effect_escalate(case: CaseSnapshot, body: EscalateBody, actor: Actor, at: datetime) -> dict[str, Any]:
    escalation = Escalation(department=body.department, reason=body.reason, escalated_at=at)
    return {"escalation": escalation, "escalation_count": case.escalation_count + 1}


def pre_report_in(case: CaseSnapshot, at: datetime) -> str | None:
    if case.escalation is None or not case.escalation.pending:
        return "没有待报到的吹哨 / no escalation awaits a report-in"
    return None


def effect_report_in(case: CaseSnapshot, body: ReportInBody, actor: Actor, at: datetime) -> dict[str, Any]:
    assert case.escalation is not None  # guaranteed by the precondition
    return {"escalation": case.escalation.model_copy(update={"reported_in_at": at})}


def validate_add_cohandler(case: CaseSnapshot, body: AddCohandlerBody, at: datetime) -> str | None:
    if body.unit == case.primary_unit:
        return f"{body.unit} 是主办单位 / {body.unit} is the primary unit"
    if body.unit in case.cohandlers:
        return f"{body.unit} 已是协办单位 / {body.unit} is already a co-handler"
    return None


def effect_add_cohandler(
    case: CaseSnapshot, body: AddCohandlerBody, actor: Actor, at: datetime
) -> dict[str, Any]:
    return {"cohandlers": (*case.cohandlers, body.unit)}


def pre_mark_overdue(case: CaseSnapshot, at: datetime) -> str | None:
    if case.overdue:
        return "已标记超期 / already flagged overdue"
    if case.deadline is None:
        return "案件没有办结期限 / the case has no deadline"
    if at <= case.deadline:
        return "尚未超过办结期限 / the deadline has not passed"
    return None


def effect_mark_overdue(
    case: CaseSnapshot, body: MarkOverdueBody, actor: Actor, at: datetime
) -> dict[str, Any]:
    return {"overdue": True}


def pre_recompute_deadline(case: CaseSnapshot, at: datetime) -> str | None:
    if case.deadline is None:
        return "案件没有办结期限 / the case has no deadline"
    return None


def validate_recompute_deadline(case: CaseSnapshot, body: RecomputeDeadlineBody, at: datetime) -> str | None:
    if body.overdue and not case.overdue:
        return "期限重算不标记超期（由超期扫描标记）/ a recompute never flags overdue; the sweep does"
    return None


def effect_recompute_deadline(
    case: CaseSnapshot, body: RecomputeDeadlineBody, actor: Actor, at: datetime
) -> dict[str, Any]:
    return {"deadline": body.deadline, "overdue": body.overdue}


def effect_self_handle(
    case: CaseSnapshot, body: SelfHandleBody, actor: Actor, at: datetime
) -> dict[str, Any]:
    return {"self_handled": True, "handler": body.handler}

