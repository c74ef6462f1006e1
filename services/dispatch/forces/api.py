"""力量调度's routes (thin): the people document, duty, busy/free, positions, suggestions, 派单到人.

Scope (:mod:`.scope`): people, duty and positions are seen by the member's unit and the command
centre; a ``member`` token sees itself and acts on its own tasks only. 本单位与指挥中心可见；队员只见本人。
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import Field

from services.dispatch.answers import ActionResult
from services.dispatch.api_common import ACTION_RESPONSES, Ctx, Staff, action_answer, actor_of, request_correlation_id
from services.dispatch.context import DispatchContext, utc_now
from services.dispatch.forces import store
from services.dispatch.forces.answers import (
    DutyList,
    ForcesLoaded,
    MemberList,
    PositionList,
    PositionsAccepted,
    StatusSet,
    Suggestions,
    Track,
)
from services.dispatch.forces.people import ForcesDocument, ShiftSpec, mask_phone
from services.dispatch.forces.positions import MAX_BATCH, TRACK_KEEP, PositionIn, fresh, to_fixes
from services.dispatch.forces.scope import sees_member, sees_unit, sees_unit_phones
from services.dispatch.forces.service import (
    ForcesProblem,
    RosterCache,
    assign_case,
    case_suggestions,
    load_forces,
    unit_duty,
)
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.records import CaseNotFoundError
from shared.answers import documented
from shared.auth import Admin, StaffPrincipal
from shared.inputs import NulFreeModel

router = APIRouter()
TAG = "forces 力量调度"

_404: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown, or outside the caller's scope 不存在或不在范围内"}
}


def rosters_of(request: Request) -> RosterCache:
    cache: RosterCache = request.app.state.forces_rosters
    return cache


Rosters = Annotated[RosterCache, Depends(rosters_of)]


def _jurisdiction(ctx: DispatchContext) -> LoadedJurisdiction:
    loaded = ctx.source.current
    if loaded is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "辖区尚未加载 / no jurisdiction snapshot yet")
    return loaded


def _problem(exc: ForcesProblem) -> HTTPException:
    code = status.HTTP_403_FORBIDDEN if exc.forbidden else status.HTTP_422_UNPROCESSABLE_CONTENT
    return HTTPException(code, str(exc))


def _check_unit(ctx: DispatchContext, principal: StaffPrincipal, unit: str) -> None:
    loaded = _jurisdiction(ctx)
    if not sees_unit(principal, loaded.snapshot.unit(unit), unit):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such unit in your scope 单位不存在或不在范围内")


# --------------------------------------------------------------------------- the people document 人员文档


@router.put(
    "/v1/forces/{county}",
    tags=[TAG],
    summary="Load a county's people, teams and rosters 载入人员、编组与排班 (admin)",
    **documented(ForcesLoaded, 401, 403, 422, 503),
)
async def put_forces(ctx: Ctx, county: str, doc: ForcesDocument, _: Admin) -> dict[str, Any]:
    if doc.county_code != county:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "county_code differs from the path 区县不符")
    loaded = _jurisdiction(ctx)
    try:
        async with ctx.runtime.uow() as uow:
            version = await load_forces(session=uow.session, doc=doc, jurisdiction=loaded)
    except ForcesProblem as exc:
        raise _problem(exc) from None
    return {
        "county_code": county,
        "version": version,
        "members": len(doc.members),
        "teams": len(doc.teams),
        "shifts": len(doc.shifts),
    }


class RostersBody(NulFreeModel):
    """Replace the county's shifts 替换排班."""

    shifts: list[ShiftSpec] = Field(max_length=20_000)


@router.put(
    "/v1/forces/{county}/rosters",
    tags=[TAG],
    summary="Replace a county's duty rosters 替换值班排班 (admin)",
    **documented(ForcesLoaded, 401, 403, 404, 422, 503),
)
async def put_rosters(ctx: Ctx, county: str, body: RostersBody, _: Admin) -> dict[str, Any]:
    loaded = _jurisdiction(ctx)
    try:
        async with ctx.runtime.uow() as uow:
            current = await store.load_document(session=uow.session, county=county)
            if current is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no people document for this county 尚未载入人员")
            doc = current[1].model_copy(update={"shifts": body.shifts})
            version = await load_forces(session=uow.session, doc=doc, jurisdiction=loaded)
    except ForcesProblem as exc:
        raise _problem(exc) from None
    return {
        "county_code": county,
        "version": version,
        "members": len(doc.members),
        "teams": len(doc.teams),
        "shifts": len(doc.shifts),
    }


@router.get(
    "/v1/forces/members",
    tags=[TAG],
    summary="Members in the caller's scope 队员列表",
    description="A member token sees itself only; phones are masked except for the unit's own account and admin.",
    **documented(MemberList, 401, 503),
)
async def get_members(
    ctx: Ctx, principal: Staff, unit: Annotated[str | None, Query(description="one unit 单位")] = None
) -> dict[str, Any]:
    snap = _jurisdiction(ctx).snapshot
    async with ctx.runtime.uow() as uow:
        rows = await store.unit_members(session=uow.session, units=[unit] if unit else None)
    items = []
    for m in rows:
        if not sees_member(principal, snap.unit(m["unit"]), m["member_id"], m["unit"]):
            continue
        phone = m["phone"] if sees_unit_phones(principal, m["unit"]) else mask_phone(m["phone"])
        items.append({**{k: m[k] for k in ("member_id", "unit", "name", "role", "terminal_id")}, "grids": m["grids"],
                      "phone": phone})  # fmt: skip
    return {"items": items}


# --------------------------------------------------------------------------- duty and status 值班与忙闲


@router.get(
    "/v1/forces/units/{unit}/duty",
    tags=[TAG],
    summary="A unit's members now: on duty, busy, available 单位值班在岗",
    **documented(DutyList, 401, 404, 503, extra=_404),
)
async def get_duty(
    ctx: Ctx,
    rosters: Rosters,
    unit: str,
    principal: Staff,
    at: Annotated[datetime | None, Query(description="moment (default now) 时点")] = None,
) -> dict[str, Any]:
    _check_unit(ctx, principal, unit)
    loaded = _jurisdiction(ctx)
    moment = at if at is not None and at.tzinfo is not None else utc_now()
    async with ctx.runtime.uow() as uow:
        items = await unit_duty(
            session=uow.session,
            unit=unit,
            county=loaded.snapshot.county_code,
            rosters=rosters,
            calendar=loaded.calendar,
            now=moment,
        )
    return {"unit": unit, "at": moment.isoformat(), "items": items}


class StatusBody(NulFreeModel):
    """忙闲: busy (on a task, off site, leave) or free, from the terminal."""

    busy: bool
    reason: str = Field("", max_length=200)


@router.post(
    "/v1/forces/members/{member_id}/status",
    tags=[TAG],
    summary="Mark a member busy or free 标记忙碌/空闲 (the member's terminal, or its unit)",
    **documented(StatusSet, 401, 404, 422, extra=_404),
)
async def post_status(ctx: Ctx, member_id: str, body: StatusBody, principal: Staff) -> dict[str, Any]:
    snap = _jurisdiction(ctx).snapshot
    now = utc_now()
    async with ctx.runtime.uow() as uow:
        found = await store.member(session=uow.session, member_id=member_id)
        if found is None or not sees_member(principal, snap.unit(found["unit"]), member_id, found["unit"]):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such member 队员不存在")
        await store.set_status(session=uow.session, member_id=member_id, busy=body.busy, reason=body.reason, at=now)
    return {"member_id": member_id, "busy": body.busy, "reason": body.reason, "since": now.isoformat()}


# --------------------------------------------------------------------------- positions 位置


class PositionBatch(NulFreeModel):
    """A batch from terminals 位置批量上报."""

    positions: list[PositionIn] = Field(min_length=1, max_length=MAX_BATCH)


async def _may_post_for(ctx: DispatchContext, principal: StaffPrincipal, member_ids: set[str]) -> None:
    """A member posts its own positions; a unit its members'; admin any (the terminal gateway)."""
    if principal.role == "admin":
        return
    if principal.role == "member":
        if member_ids != {principal.member}:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a member posts its own positions only 只能上报本人位置")
        return
    if principal.role != "unit":
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role!r} may not post positions")
    async with ctx.runtime.uow() as uow:
        rows = await store.unit_members(session=uow.session, units=[principal.unit or ""])
    if not member_ids <= {r["member_id"] for r in rows}:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "positions of members of another unit 含非本单位队员")


@router.post(
    "/v1/forces/positions",
    tags=[TAG],
    summary="Post a batch of positions 批量上报位置 (converted to WGS-84)",
    description="Each point `{member_id, at, lng, lat, crs}` (crs: wgs84 | gcj02 | bd09 | cgcs2000) is converted "
    "to WGS-84; the latest per member is kept and a 24-hour track. Points from the future or older than 24 h are "
    "left out (`stored` < `received`). 转换为 WGS-84，保存最新位置与 24 小时轨迹。",
    **documented(PositionsAccepted, 401, 403, 422),
)
async def post_positions(ctx: Ctx, body: PositionBatch, principal: Staff) -> dict[str, Any]:
    await _may_post_for(ctx, principal, {p.member_id for p in body.positions})
    fixes = to_fixes(body.positions, now=utc_now())
    async with ctx.runtime.uow() as uow:
        await store.save_fixes(session=uow.session, fixes=fixes)
    return {"received": len(body.positions), "stored": len(fixes)}


@router.get(
    "/v1/forces/positions",
    tags=[TAG],
    summary="Latest positions in the caller's scope 最新位置 (member's unit and the command centre)",
    **documented(PositionList, 401, 503),
)
async def get_positions(
    ctx: Ctx,
    rosters: Rosters,
    principal: Staff,
    unit: Annotated[str | None, Query(description="one unit 单位")] = None,
    fresh_only: Annotated[bool, Query(alias="fresh", description="only fresh (≤ 30 min) 仅新鲜位置")] = False,
    on_duty: Annotated[bool, Query(description="only members on duty now 仅在班队员")] = False,
) -> dict[str, Any]:
    loaded = _jurisdiction(ctx)
    snap, now = loaded.snapshot, utc_now()
    async with ctx.runtime.uow() as uow:
        members = await store.unit_members(session=uow.session, units=[unit] if unit else None)
        members = [m for m in members if sees_member(principal, snap.unit(m["unit"]), m["member_id"], m["unit"])]
        ids = [m["member_id"] for m in members]
        latest = await store.latest_positions(session=uow.session, member_ids=ids)
        index = await rosters.index(session=uow.session, county=snap.county_code)
        busy = await store.statuses(session=uow.session, member_ids=ids)
    items = []
    for m in members:
        fix = latest.get(m["member_id"])
        if fix is None or (fresh_only and not fresh(fix.at, now)):
            continue
        duty = index.duty(m["member_id"], now, loaded.calendar)
        if on_duty and duty is None:
            continue
        st = busy.get(m["member_id"])
        items.append(
            {
                **{k: m[k] for k in ("member_id", "unit", "name", "role")},
                "at": fix.at.isoformat(),
                "lng": fix.lng,
                "lat": fix.lat,
                "fresh": fresh(fix.at, now),
                "available": duty is not None and not (st is not None and st.busy),
            }
        )
    return {"items": items}


@router.get(
    "/v1/forces/members/{member_id}/track",
    tags=[TAG],
    summary="A member's track of the last 24 hours 24 小时轨迹",
    **documented(Track, 401, 404, extra=_404),
)
async def get_track(ctx: Ctx, member_id: str, principal: Staff) -> dict[str, Any]:
    snap = _jurisdiction(ctx).snapshot
    async with ctx.runtime.uow() as uow:
        found = await store.member(session=uow.session, member_id=member_id)
        if found is None or not sees_member(principal, snap.unit(found["unit"]), member_id, found["unit"]):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such member 队员不存在")
        points = await store.track(session=uow.session, member_id=member_id, since=utc_now() - TRACK_KEEP)
    return {
        "member_id": member_id,
        "points": [{"at": p.at.isoformat(), "lng": p.lng, "lat": p.lat} for p in points],
    }


# --------------------------------------------------------------------------- suggest and assign 派单到人


@router.get(
    "/v1/forces/cases/{case_id}/suggestions",
    tags=[TAG],
    summary="Who to send for a case 派单建议 (the unit's leader or account, dispatchers)",
    description="Available members and teams of the case's unit: fresh positions nearest first, then grid workers "
    "of the case's grid, then the rest; each with its reasons (distance, on duty since, open tasks in hand).",
    **documented(Suggestions, 401, 403, 404, 422, 503, extra=_404),
)
async def get_suggestions(
    ctx: Ctx,
    rosters: Rosters,
    case_id: uuid.UUID,
    principal: Staff,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    loaded = _jurisdiction(ctx)
    try:
        async with ctx.runtime.uow() as uow:
            record, found = await case_suggestions(
                session=uow.session,
                case_id=case_id,
                actor=actor_of(principal),
                county=loaded.snapshot.county_code,
                rosters=rosters,
                calendar=loaded.calendar,
                now=utc_now(),
                limit=limit,
            )
    except CaseNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case 案件不存在") from None
    except ForcesProblem as exc:
        raise _problem(exc) from None
    return {"case_id": str(case_id), "unit": record.snapshot.primary_unit, "items": [s.to_json() for s in found]}


class AssignPeopleBody(NulFreeModel):
    """派单到人: the member or team of the handling unit."""

    assignee: str = Field(min_length=1, max_length=100, description="member id or team id 队员或编组")
    note: str = Field("", max_length=2000)
    expected_version: int | None = Field(None, description="omit to act on the current version 省略则按当前版本")


@router.post(
    "/v1/forces/cases/{case_id}/assign",
    tags=[TAG],
    summary="Assign a case to a member or team 派单到人 (the unit's leader or account, dispatchers)",
    description="Recorded on the case timeline and published as `case.member_assigned`; the member then sees the "
    "case and acts on it (办结, 延期申请) with its `member` token. 记入时间线并发布事件。",
    **documented(ActionResult, 401, extra=ACTION_RESPONSES),
)
async def post_assign(
    request: Request, ctx: Ctx, case_id: uuid.UUID, body: AssignPeopleBody, principal: Staff
) -> JSONResponse:
    try:
        async with ctx.runtime.uow() as uow:
            outcome = await assign_case(
                session=uow.session,
                case_id=case_id,
                actor=actor_of(principal),
                assignee=body.assignee,
                expected_version=body.expected_version,
                note=body.note,
                now=utc_now(),
                jurisdiction=ctx.source.current,
                max_rejections=ctx.settings.max_rejections,
                correlation_id=request_correlation_id(request),
            )
    except CaseNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case 案件不存在") from None
    except ForcesProblem as exc:
        raise _problem(exc) from None
    return action_answer(outcome)


__all__ = ["router"]
