"""What dispatch's route modules share (路由公共部分): the dependencies, the caller as a lifecycle actor,
a case as the API shows it, and the answer to a lifecycle action.

``api.py`` (cases), ``forces/api.py`` (力量调度) and the other route modules build on these, so a
case and an action's refusal read the same wherever they are answered. 各路由模块共用：依赖、
操作人、案件的接口表示、流转操作的应答。
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request, status
from fastapi.responses import JSONResponse

from services.dispatch.actions import ActionOutcome, ActionProblem
from services.dispatch.case_model import Actor, Refused, Role
from services.dispatch.context import DispatchContext
from services.dispatch.queries import caller_json
from services.dispatch.records import CaseRecord
from shared.auth import StaffPrincipal, current_staff, require_roles

__all__ = [
    "ACTION_RESPONSES",
    "Ctx",
    "Dispatcher",
    "Staff",
    "action_answer",
    "actor_of",
    "applied_transitions",
    "case_json",
    "dispatch_context",
    "refusal_answer",
    "request_correlation_id",
]


async def dispatch_context(request: Request) -> DispatchContext:
    """The app's :class:`DispatchContext` (dependency). 应用上下文。"""
    ctx: DispatchContext = request.app.state.dispatch
    return ctx


#: Route parameter types: the app's context, any staff token, a dispatcher's or admin's token.
Ctx = Annotated[DispatchContext, Depends(dispatch_context)]
Staff = Annotated[StaffPrincipal, Depends(current_staff)]
Dispatcher = Annotated[StaffPrincipal, Depends(require_roles("dispatcher", "admin"))]


def actor_of(principal: StaffPrincipal) -> Actor:
    """The lifecycle actor of a staff token (a member's id is its member id). 工作人员令牌对应的操作人。"""
    actor_id = principal.member if principal.role == "member" else principal.token_name
    return Actor(Role(principal.role), unit=principal.unit, township=principal.township, id=actor_id)


def request_correlation_id(request: Request) -> str:
    """The request's id (set by the request-id middleware), carried by the events it causes. 请求关联 id。"""
    return str(request.scope.get("state", {}).get("request_id") or uuid.uuid4())


def case_json(record: CaseRecord, *, detail: bool = False) -> dict[str, Any]:
    """A case as the API shows it (its fields from :meth:`CaseRecord.api_fields`). 案件的接口表示。"""
    s = record.snapshot
    out = record.api_fields()
    out["explanation_zh"] = record.explanation.get("explanation_zh")
    if detail:
        incident = record.incident
        out["explanation"] = record.explanation
        out["snapshot"] = s.model_dump(mode="json")
        out["incident"] = {
            k: incident.get(k)
            for k in (
                "title",
                "description",
                "address",
                "location",
                "category_key",
                "category_name",
                "appeal_type",
                "channel",
                "reporter_kind",
                "worker_id",
                "grid_code",
                "division_code",
                "cell_code",
                "attachments",
                "approval",  # 审批办件: the applicant already masked by intake
                "alarm",  # 监测告警: device, reading, snapshot
            )
        }
        out["incident"]["caller"] = caller_json(incident)
    return out


#: The refusals a lifecycle action may answer with (OpenAPI). 流转操作可能的拒绝应答。
ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "the role or the caller's unit may not do this 无权执行"},
    404: {"description": "no such case, or outside the caller's scope 案件不存在或不在范围内"},
    409: {"description": "not allowed in the current state, or version conflict: `{detail, state, version}`"},
    422: {"description": "invalid body 请求体无效"},
}


def refusal_answer(refused: Refused | ActionProblem) -> tuple[int, dict[str, Any]]:
    """A refused action's status (403 / 409 / 422) and body ``{detail, kind, state, version}``. 拒绝的状态码与应答。"""
    if isinstance(refused, Refused):
        code = {
            "forbidden": status.HTTP_403_FORBIDDEN,
            "conflict": status.HTTP_409_CONFLICT,
            "not_allowed": status.HTTP_409_CONFLICT,
            "invalid": status.HTTP_422_UNPROCESSABLE_CONTENT,
        }[refused.kind]
        state, version = str(refused.current_state), refused.current_version
    else:
        code = status.HTTP_409_CONFLICT if refused.kind == "conflict" else status.HTTP_422_UNPROCESSABLE_CONTENT
        state, version = refused.current_state, refused.current_version
    return code, {"detail": refused.reason, "kind": refused.kind, "state": state, "version": version}


def applied_transitions(outcome: ActionOutcome) -> list[dict[str, Any]]:
    """The transitions an action applied, as answered. 已执行的流转。"""
    return [
        {"version": a.new_case.version, "event_type": a.event_type, "state": str(a.new_case.state)}
        for a in outcome.applied
    ]


def action_answer(outcome: ActionOutcome) -> JSONResponse:
    """A lifecycle action's answer: the case and its transitions, or the refusal as ``{detail, kind, state,
    version}`` with 403 / 409 / 422. 流转操作的应答：案件及其流转，或拒绝原因。"""
    if outcome.refused is not None:
        code, body = refusal_answer(outcome.refused)
        return JSONResponse(body, status_code=code)
    assert outcome.record is not None
    return JSONResponse({"case": case_json(outcome.record), "transitions": applied_transitions(outcome)})
