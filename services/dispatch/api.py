"""Dispatch's HTTP routes (thin): cases, timeline, manual assignment, lifecycle actions, SSE stream.

派遣服务 HTTP 接口（薄层）：案件查询、时间线、手动派遣、流转操作、事件流（SSE）。

Scope 数据范围 (lifecycle.can_see): township-bound staff see only their township,
a unit only cases where it is primary, co-handler or the escalated department;
admin and hotline see everything. A case outside the caller's scope answers 404.
乡镇账号只见本乡镇；单位账号只见其主办、协办或被吹哨的案件；范围外的案件答 404。

Read-side answers beyond the case row (action reasons, manual-dispatch candidates,
the caller, the 待回访 queue) come from ``queries.py``. 案件行之外的只读结果见 ``queries.py``。
The dependencies, a case as the API shows it and an action's answer, shared with the other route
modules, are in ``api_common.py``. 依赖、案件表示与操作应答（各路由模块共用）见 ``api_common.py``。
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field

from services.dispatch.actions import API_ACTIONS, perform_action
from services.dispatch.answers import ActionResult, Candidates, CaseDetail, CaseList, Timeline
from services.dispatch.api_common import (
    ACTION_RESPONSES,
    Ctx,
    Dispatcher,
    Staff,
    action_answer,
    actor_of,
    case_json,
    request_correlation_id,
)
from services.dispatch.case_model import Action
from services.dispatch.context import DispatchContext, utc_now
from services.dispatch.queries import (
    CandidatesProblem,
    CaseFilters,
    action_reasons,
    callback_pending_conflict,
    case_candidates,
    get_case,
    get_timeline,
    last_transition_id,
    list_callback_pending,
    list_cases,
    merged_into,
    role_actions,
    transitions_after,
)
from services.dispatch.records import CaseNotFoundError
from shared.answers import documented
from shared.auth import StaffPrincipal
from shared.errors import MAX_INT64
from shared.inputs import NulFreeModel

router = APIRouter()
TAG = "dispatch 派遣"

#: A missing transition id (in flight or rolled back) is waited for this long before the stream skips it.
#: 事件流遇到缺号（事务未提交或已回滚）时最长等待秒数。
STREAM_GAP_WAIT_S = 10.0
STREAM_HEARTBEAT_S = 15.0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --------------------------------------------------------------------------- queries 查询


@router.get("/v1/cases", **documented(CaseList), tags=[TAG], summary="List cases in the caller's scope 案件列表")
async def get_cases(
    ctx: Ctx,
    principal: Staff,
    township: str | None = None,
    unit: str | None = None,
    state: Annotated[list[str] | None, Query(description="one or more states 状态（可多选）")] = None,
    source: str | None = None,
    kind: Annotated[str | None, Query(description="`incident` 事件 or `inspection` 监管任务")] = None,
    source_id: str | None = None,
    matter: str | None = None,
    queue: Annotated[str | None, Query(description="`triage`: the manual triage queue 待人工分拨")] = None,
    overdue: bool | None = None,
    merged: bool | None = None,
    from_: Annotated[datetime | None, Query(alias="from", description="reported at or after 上报时间起")] = None,
    to: Annotated[datetime | None, Query(description="reported before 上报时间止")] = None,
    callback_pending: Annotated[
        bool | None,
        Query(description="`true`: closed 12345 cases with no 回访 recorded yet (the 待回访 queue) 待回访"),
    ] = None,
    cursor: Annotated[
        int | None, Query(ge=0, le=MAX_INT64, description="`next_cursor` of the previous page 翻页游标")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    if queue not in (None, "", "triage"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "queue must be 'triage'")
    if callback_pending is False:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "callback_pending: only `true` is supported")
    filters = CaseFilters(
        township=township,
        unit=unit,
        state=tuple(state or ()),
        source=source,
        kind=kind,
        source_id=source_id,
        matter=matter,
        triage=queue == "triage",
        overdue=overdue,
        reported_from=from_,
        reported_to=to,
        merged=merged,
    )
    if callback_pending and (conflict := callback_pending_conflict(filters)) is not None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, conflict)
    async with ctx.runtime.uow() as uow:
        if callback_pending:
            records, next_cursor = await list_callback_pending(
                session=uow.session, actor=actor_of(principal), filters=filters, cursor=cursor, limit=limit
            )
        else:
            records, next_cursor = await list_cases(
                session=uow.session, actor=actor_of(principal), filters=filters, cursor=cursor, limit=limit
            )
    return {
        "items": [case_json(r) for r in records],
        "next_cursor": str(next_cursor) if next_cursor is not None else None,
    }


@router.get(
    "/v1/cases/{case_id}",
    **documented(CaseDetail),
    tags=[TAG],
    summary="One case with its routing explanation 案件详情（含派遣说明）",
    description="Besides the case: `allowed_actions` (what the signed-in staff may do now), `action_reasons` "
    "(for every API action, why not — `null` when allowed), `role_actions` (the actions the role may take on "
    "some case), `incident.caller` (`phone_masked`, `anonymous`; never the hash) and `duplicates`. "
    "除案件外：当前可执行操作、各操作不可用原因、角色可执行操作、来电人（脱敏）与并入的重复件。",
)
async def get_one(ctx: Ctx, case_id: uuid.UUID, principal: Staff) -> dict[str, Any]:
    actor = actor_of(principal)
    async with ctx.runtime.uow() as uow:
        try:
            record = await get_case(session=uow.session, case_id=case_id, actor=actor)
        except CaseNotFoundError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case 案件不存在") from None
        duplicates = await merged_into(session=uow.session, case_id=case_id)
    body = case_json(record, detail=True)
    body["duplicates"] = [str(d) for d in duplicates]
    reasons = action_reasons(record, actor, utc_now())
    body["allowed_actions"] = sorted(a for a, why in reasons.items() if why is None)
    body["action_reasons"] = reasons
    body["role_actions"] = role_actions(actor)
    return body


@router.get(
    "/v1/cases/{case_id}/candidates",
    tags=[TAG],
    summary="Candidate units for manual dispatch 手动派遣候选单位 (dispatcher/admin)",
    description="`routing.candidates()` on the current jurisdiction snapshot, in routing order (override rule "
    "unit, devolved unit, stationed agency, county department), for `matter` (default: the case's) in "
    "`township` (default: the case's). Each candidate: `unit`, `unit_name`, `decided_by`, `exists`, `why_zh`, "
    "`rejected` (the unit rejected the case and may not get it back). `suggested`: the first candidate that "
    "exists and did not reject it; `rejected_units`: every unit that may not get the case back. "
    "按路由顺序给出候选单位，标出退单单位；`suggested` 为系统建议。",
    **documented(
        Candidates,
        extra={
            404: {"description": "no such case, or outside the caller's scope 案件不存在或不在范围内"},
            422: {"description": "unknown matter or township 事项或乡镇未知"},
            503: {"description": "no jurisdiction snapshot loaded yet 辖区尚未加载"},
        },
    ),
)
async def get_candidates(
    ctx: Ctx,
    case_id: uuid.UUID,
    principal: Dispatcher,
    matter: Annotated[str | None, Query(description="matter code (default: the case's) 事项")] = None,
    township: Annotated[str | None, Query(description="township code (default: the case's) 乡镇")] = None,
) -> dict[str, Any]:
    """Routing's candidate units for manual dispatch (see :func:`queries.case_candidates`). 手动派遣候选单位。"""
    async with ctx.runtime.uow() as uow:
        try:
            record = await get_case(session=uow.session, case_id=case_id, actor=actor_of(principal))
        except CaseNotFoundError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case 案件不存在") from None
    snapshot = ctx.source.snapshot
    if snapshot is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "辖区尚未加载 / no jurisdiction snapshot yet")
    try:
        answer = case_candidates(record, snapshot, matter=matter or None, township=township or None)
    except CandidatesProblem as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return {"case_id": str(record.id), **answer.to_dict()}


def _timeline_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "case_id": str(row["case_id"]),
        "version": row["version"],
        "action": row["action"],
        "event_type": row["event_type"],
        "state": row["state"],
        "previous_state": row["previous_state"],
        "actor_role": row["actor_role"],
        "actor_unit": row["actor_unit"],
        "actor_township": row["actor_township"],
        "actor_id": row["actor_id"],
        "occurred_at": _iso(row["occurred_at"]),
        "recorded_at": _iso(row["recorded_at"]),
        "note": row["note"],
        "body": row["body"],
        "changes": row["changes"],
        "deadline": _iso(row["deadline"]),
        "event_id": str(row["event_id"]) if row["event_id"] else None,
    }


@router.get(
    "/v1/cases/{case_id}/timeline", **documented(Timeline), tags=[TAG], summary="Every transition of a case 案件时间线"
)
async def get_case_timeline(ctx: Ctx, case_id: uuid.UUID, principal: Staff) -> dict[str, Any]:
    async with ctx.runtime.uow() as uow:
        try:
            await get_case(session=uow.session, case_id=case_id, actor=actor_of(principal))
        except CaseNotFoundError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case 案件不存在") from None
        rows = await get_timeline(session=uow.session, case_id=case_id)
    return {"case_id": str(case_id), "entries": [_timeline_json(r) for r in rows]}


# --------------------------------------------------------------------------- actions 操作


async def _act(
    request: Request, ctx: DispatchContext, case_id: uuid.UUID, action: Action, body: Any, principal: StaffPrincipal
) -> JSONResponse:
    if not isinstance(body, dict):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body must be a JSON object 请求体须为 JSON 对象")
    try:
        async with ctx.runtime.uow() as uow:
            outcome = await perform_action(
                session=uow.session,
                case_id=case_id,
                action=action,
                body=body,
                actor=actor_of(principal),
                now=utc_now(),
                jurisdiction=ctx.source.current,
                max_rejections=ctx.settings.max_rejections,
                correlation_id=request_correlation_id(request),
            )
    except CaseNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case 案件不存在") from None
    return action_answer(outcome)


async def _json(request: Request) -> Any:
    try:
        return orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body is not JSON 请求体不是 JSON") from None


class AssignRequest(NulFreeModel):
    """手动派遣: the unit, optionally the matter, and why. 手动派遣请求体。"""

    unit: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    matter: str | None = None
    deadline: datetime | None = None
    expected_version: int | None = Field(None, description="omit to act on the current version 省略则按当前版本")


@router.post(
    "/v1/cases/{case_id}/assign",
    tags=[TAG],
    summary="Assign a case by hand 手动派遣 (dispatcher; triage or reported cases)",
    **documented(ActionResult, extra=ACTION_RESPONSES),
)
async def assign(
    request: Request,
    ctx: Ctx,
    case_id: uuid.UUID,
    body: AssignRequest,
    principal: Dispatcher,
) -> JSONResponse:
    data = body.model_dump(mode="json", exclude_none=True)
    if body.expected_version is None:
        async with ctx.runtime.uow() as uow:
            try:
                record = await get_case(session=uow.session, case_id=case_id, actor=actor_of(principal))
            except CaseNotFoundError:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case 案件不存在") from None
        data["expected_version"] = record.snapshot.version
    return await _act(request, ctx, case_id, Action.ASSIGN, data, principal)


@router.post(
    "/v1/cases/{case_id}/actions/{action}",
    tags=[TAG],
    summary="Perform a lifecycle action 执行流转操作",
    description="Actions: " + ", ".join(f"`{a}`" for a in API_ACTIONS) + ". Body: the action's fields plus "
    "`expected_version` (optimistic concurrency) and optional `occurred_at` (history import). "
    "After `reject` the case is re-dispatched to the next candidate, or goes to triage.",
    **documented(ActionResult, extra=ACTION_RESPONSES),
)
async def act(request: Request, ctx: Ctx, case_id: uuid.UUID, action: str, principal: Staff) -> JSONResponse:
    try:
        parsed = Action(action)
    except ValueError:
        parsed = None
    if parsed is None or parsed not in API_ACTIONS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown action {action!r} 未知操作")
    return await _act(request, ctx, case_id, parsed, await _json(request), principal)


# --------------------------------------------------------------------------- SSE 事件流


def _sse(row: dict[str, Any]) -> bytes:
    data = {
        "id": row["id"],
        "case_id": str(row["case_id"]),
        "version": row["version"],
        "event_type": row["event_type"],
        "action": row["action"],
        "state": row["state"],
        "previous_state": row["previous_state"],
        "actor_role": row["actor_role"],
        "actor_unit": row["actor_unit"],
        "occurred_at": _iso(row["occurred_at"]),
        "note": row["note"],
        "deadline": _iso(row["deadline"]),
        "township": row["township"],
        "unit": row["unit"],
        "matter": row["matter"],
        "source": row["source"],
        "source_id": row["source_id"],
        "overdue": row["overdue"],
        "merged_into": str(row["merged_into"]) if row["merged_into"] else None,
    }
    payload = orjson.dumps(data).decode()
    return f"id: {row['id']}\nevent: {row['event_type']}\ndata: {payload}\n\n".encode()


@router.get(
    "/v1/stream",
    tags=[TAG],
    summary="Server-Sent Events of case changes in the caller's scope 案件变更事件流",
    description="Each event: `id` (transition id; send it back as `Last-Event-ID` to resume), `event` "
    "(event type), `data` (JSON). Without `Last-Event-ID` (or `after`) the stream starts at the newest change. "
    "`max_events` / `max_seconds` end the response (for polling clients and tests).",
    response_model=None,
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "text/event-stream 事件流",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def stream(
    request: Request,
    ctx: Ctx,
    principal: Staff,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_INT64, description="start after this transition id")] = None,
    max_events: Annotated[int | None, Query(ge=1)] = None,
    max_seconds: Annotated[float | None, Query(gt=0)] = None,
) -> StreamingResponse:
    actor = actor_of(principal)
    start = after
    if last_event_id is not None and last_event_id.strip().isdigit():
        start = int(last_event_id.strip())
        if start > MAX_INT64:  # checked before the stream starts: a 422, not a broken stream
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "Last-Event-ID is not a transition id")
    if start is None:
        async with ctx.runtime.uow() as uow:
            start = await last_transition_id(session=uow.session)
    begin = time.monotonic()

    async def events() -> AsyncIterator[bytes]:
        cursor = start
        sent = 0
        gap_seen: dict[int, float] = {}
        last_beat = time.monotonic()
        yield b"retry: 2000\n\n"
        while True:
            async with ctx.runtime.uow() as uow:
                rows = await transitions_after(session=uow.session, after_id=cursor, actor=actor)
            now = time.monotonic()
            for row in rows:
                if row["id"] != cursor + 1:  # a missing id: in flight (wait) or rolled back (skip after a while)
                    first = gap_seen.setdefault(cursor + 1, now)
                    if now - first < STREAM_GAP_WAIT_S:
                        break
                    gap_seen.pop(cursor + 1, None)
                cursor = row["id"]
                if row["visible"]:
                    yield _sse(row)
                    sent += 1
                    last_beat = now
                    if max_events is not None and sent >= max_events:
                        return
            if max_seconds is not None and now - begin >= max_seconds:
                return
            if await request.is_disconnected():
                return
            if now - last_beat >= STREAM_HEARTBEAT_S:
                yield b": keep-alive\n\n"
                last_beat = now
            await asyncio.sleep(ctx.settings.stream_poll_s)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
