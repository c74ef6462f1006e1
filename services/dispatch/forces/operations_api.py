"""联合执法's routes (thin): open, list, one operation, 报到 / 结束 / 撤销, the audit trail. 联合执法接口。"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field

from services.dispatch.api_common import Ctx, Staff, actor_of, request_correlation_id
from services.dispatch.context import utc_now
from services.dispatch.forces.answers import OperationList, OperationOne, OperationTimeline
from services.dispatch.forces.operation_rules import TRANSITIONS, OpActor, Operation, late_units
from services.dispatch.forces.operations import (
    OperationNotFoundError,
    OperationProblem,
    act_on_operation,
    get_operation,
    list_operations,
    open_operation,
    operation_timeline,
)
from shared.answers import documented
from shared.auth import StaffPrincipal
from shared.inputs import NulFreeModel

router = APIRouter()
TAG = "forces 力量调度"
_404: dict[int | str, dict[str, Any]] = {404: {"description": "no such operation in your scope 联合执法不存在"}}
_ACT: dict[int | str, dict[str, Any]] = {
    **_404,
    409: {"description": "version conflict, not allowed now, or the unit confirmed already `{detail, kind}`"},
}


def op_actor(principal: StaffPrincipal) -> OpActor:
    return OpActor(role=principal.role, unit=principal.unit, township=principal.township,
                   id=principal.member or principal.token_name)  # fmt: skip


def op_json(op: Operation, now: datetime) -> dict[str, Any]:
    body = op.model_dump(mode="json")
    body["late_units"] = late_units(op, now)
    body["confirmed_late"] = sorted(u for u, c in op.confirmations.items() if c.late)
    return body


class OpenBody(NulFreeModel):
    """发起联合执法: lead unit, participating units, window, place, cases, note."""

    township: str = Field(min_length=1, max_length=20)
    lead_unit: str = Field(min_length=1, max_length=100, description="牵头单位")
    units: list[str] = Field(min_length=1, max_length=50, description="参与单位")
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    place: str = Field(min_length=1, max_length=500)
    cases: list[uuid.UUID] = Field(default_factory=list, max_length=200)
    note: str = Field("", max_length=2000)


@router.post(
    "/v1/forces/operations",
    tags=[TAG],
    summary="Open a joint operation 发起联合执法 (dispatcher, township admin, admin)",
    status_code=201,
    **documented(OperationOne, 401, 403, 422, 503, status=201, description="Created"),
)
async def post_operation(request: Request, ctx: Ctx, body: OpenBody, principal: Staff) -> dict[str, Any]:
    loaded = ctx.source.current
    if loaded is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no jurisdiction snapshot yet 辖区尚未加载")
    now = utc_now()
    try:
        async with ctx.runtime.uow() as uow:
            op = await open_operation(
                session=uow.session, actor=op_actor(principal), case_actor=actor_of(principal),
                spec=body.model_dump(), jurisdiction=loaded, now=now, correlation_id=request_correlation_id(request),
            )  # fmt: skip
    except PermissionError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except OperationProblem as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return op_json(op, now)


@router.get(
    "/v1/forces/operations",
    tags=[TAG],
    summary="Joint operations in the caller's scope 联合执法列表",
    **documented(OperationList, 401),
)
async def get_operations(ctx: Ctx, principal: Staff) -> dict[str, Any]:
    now = utc_now()
    async with ctx.runtime.uow() as uow:
        ops = await list_operations(session=uow.session, actor=op_actor(principal))
    return {"items": [op_json(op, now) for op in ops]}


@router.get(
    "/v1/forces/operations/{op_id}",
    tags=[TAG],
    summary="One joint operation 联合执法详情 (confirmations, late and absent units)",
    **documented(OperationOne, 401, 404, extra=_404),
)
async def get_one_operation(ctx: Ctx, op_id: uuid.UUID, principal: Staff) -> dict[str, Any]:
    try:
        async with ctx.runtime.uow() as uow:
            op = await get_operation(session=uow.session, op_id=op_id, actor=op_actor(principal))
    except OperationNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such operation 联合执法不存在") from None
    return op_json(op, utc_now())


@router.get(
    "/v1/forces/operations/{op_id}/timeline",
    tags=[TAG],
    summary="A joint operation's audit trail 联合执法记录",
    **documented(OperationTimeline, 401, 404, extra=_404),
)
async def get_operation_timeline(ctx: Ctx, op_id: uuid.UUID, principal: Staff) -> dict[str, Any]:
    try:
        async with ctx.runtime.uow() as uow:
            await get_operation(session=uow.session, op_id=op_id, actor=op_actor(principal))
            rows = await operation_timeline(session=uow.session, op_id=op_id)
    except OperationNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such operation 联合执法不存在") from None
    entries = [
        {**{k: r[k] for k in ("version", "action", "state", "actor_role", "actor_unit", "actor_id", "body",
                              "changes")}, "occurred_at": r["occurred_at"].isoformat()}
        for r in rows
    ]  # fmt: skip
    return {"operation_id": str(op_id), "entries": entries}


@router.post(
    "/v1/forces/operations/{op_id}/{action}",
    tags=[TAG],
    summary="报到 confirm / 结束 conclude / 撤销 cancel a joint operation",
    description="Actions: " + ", ".join(f"`{a}`" for a in TRANSITIONS) + ". Body: the action's fields plus "
    "`expected_version`. `confirm` (a participating unit): `people` (member ids sent), after the start it is "
    "recorded late; `conclude` (lead unit or command): `result`, `apply` (`resolve`: the operation's accepted "
    "cases are resolved with the result; `leave`); `cancel`: `reason`.",
    **documented(OperationOne, 401, 403, 422, extra=_ACT),
)
async def post_operation_action(
    request: Request, ctx: Ctx, op_id: uuid.UUID, action: str, principal: Staff
) -> JSONResponse:
    if action not in TRANSITIONS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown action {action!r}")
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body must be a JSON object")
    now = utc_now()
    try:
        async with ctx.runtime.uow() as uow:
            outcome = await act_on_operation(
                session=uow.session, op_id=op_id, action=action, body=body, actor=op_actor(principal), now=now,
                jurisdiction=ctx.source.current, correlation_id=request_correlation_id(request),
            )  # fmt: skip
    except OperationNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such operation 联合执法不存在") from None
    if outcome.refused is not None:
        code = {"forbidden": 403, "conflict": 409, "not_allowed": 409, "invalid": 422}[outcome.refused.kind]
        return JSONResponse({"detail": outcome.refused.reason, "kind": outcome.refused.kind,
                             "version": outcome.operation.version}, status_code=code)  # fmt: skip
    return JSONResponse({**op_json(outcome.operation, now), "resolved_cases": outcome.resolved,
                         "left_cases": outcome.left})  # fmt: skip
