"""The devolution list's routes 下放清单接口: record a decision (admin), read entries and decisions.

``POST /v1/counties/{code}/devolution/changes`` records a decision (文号 and dated items) as a new
bundle version and publishes ``jurisdiction.changed`` (change=devolution, with the diff);
``GET /v1/counties/{code}/devolution`` lists every entry (history included);
``GET /v1/counties/{code}/devolution/changes`` lists the recorded decisions.
登记下放调整（管理员）；查询全部下放条目（含历史）与调整记录。
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import Field

from services.grid.answers import CountyState
from services.grid.api import CountyCode, Grid
from services.grid.devolution import (
    DevolutionInvalidError,
    devolution_history,
    list_devolution_changes,
    record_devolution_change,
)
from services.grid.service import CountyNotFoundError, utc_now
from shared.answers import Answer, documented
from shared.auth import Admin, Staff
from shared.jurisdiction.devolution import DevolutionChange

router = APIRouter()

TAG = "devolution 下放清单"


class DevolutionRecorded(CountyState):
    """A recorded devolution decision: the county's new state and the diff 下放调整登记结果."""

    changed: bool
    document: str
    items: list[dict[str, Any]]


class DevolutionEntries(Answer):
    """Every devolution entry of a county, history included 全部下放条目（含历史）."""

    county_code: str
    version: int
    entries: list[dict[str, Any]] = Field(
        description="township, matter, mode (devolved 下放 | entrusted 委托 | assist 协助), effective_from, "
        "effective_to (first day no longer in force), document (文号); undated list entries have no dates"
    )


class DevolutionDecisions(Answer):
    """Recorded devolution decisions, oldest first 下放调整记录."""

    county_code: str
    changes: list[dict[str, Any]]


def _no_county(code: str) -> str:
    return f"county {code} is not in the registry 区县未登记"


@router.post(
    "/v1/counties/{code}/devolution/changes",
    tags=[TAG],
    summary="Record a devolution decision 登记下放清单调整 (admin)",
    description="Body: `{document: 文号, items: [{township, matter, mode: devolved | entrusted | assist | none, "
    "effective_from: YYYY-MM-DD}]}` — from that day (Asia/Shanghai) the matter is devolved 下放, entrusted 委托, "
    "assisted 协助 or returned 收回 (`none`). Each day must be after today: history is never rewritten. The "
    "entry in force that day is closed on it; a new bundle version and rule-set version are made; "
    "`jurisdiction.changed` (change=devolution) carries the diff. Any problem rejects the whole decision "
    "(422 `{detail, problems: [{path, message}]}`).",
    **documented(
        DevolutionRecorded,
        extra={
            401: {"description": "missing or unknown token 缺少或未知令牌"},
            403: {"description": "not an admin token 非管理员令牌"},
            404: {"description": "unknown county 区县未登记"},
            422: {"description": "rejected as a whole 整体拒绝, every problem listed"},
            503: {"description": "database unavailable (Retry-After) 数据库暂不可用"},
        },
    ),
)
async def post_devolution_change(
    request: Request, grid: Grid, code: CountyCode, change: DevolutionChange, principal: Admin
) -> JSONResponse:
    try:
        async with grid.runtime.uow() as uow:
            outcome, diff = await record_devolution_change(
                session=uow.session,
                registry=grid.registry,
                county_code=code,
                change=change,
                actor=principal.token_name or principal.role,
                correlation_id=str(request.scope.get("state", {}).get("request_id") or uuid.uuid4()),
                now=utc_now(),
            )
    except CountyNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _no_county(code)) from None
    except DevolutionInvalidError as exc:
        grid.count("devolution", "rejected")
        return JSONResponse(
            {
                "detail": f"decision rejected: {len(exc.problems)} problem(s); nothing changed 调整有误，整体拒绝",
                "problems": [p.to_dict() for p in exc.problems],
            },
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    if outcome.snapshot is not None:
        grid.registry.put(outcome.snapshot)  # after the commit / 提交之后再切换
    grid.count("devolution", "changed")
    return JSONResponse(
        {**outcome.state.to_dict(), "changed": outcome.changed, "document": change.document, "items": diff}
    )


@router.get(
    "/v1/counties/{code}/devolution",
    **documented(DevolutionEntries, 404),
    tags=[TAG],
    summary="Devolution entries, history included 下放条目（含历史）",
)
async def get_devolution(grid: Grid, code: CountyCode, _: Staff) -> dict[str, Any]:
    entries = devolution_history(grid.registry, code)
    snapshot = grid.registry.get(code)
    if entries is None or snapshot is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _no_county(code))
    return {"county_code": code, "version": snapshot.version, "entries": entries}


@router.get(
    "/v1/counties/{code}/devolution/changes",
    **documented(DevolutionDecisions, 404),
    tags=[TAG],
    summary="Recorded devolution decisions 下放调整记录",
)
async def get_devolution_changes(grid: Grid, code: CountyCode, _: Staff) -> dict[str, Any]:
    if grid.registry.get(code) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _no_county(code))
    async with grid.runtime.uow() as uow:
        changes = await list_devolution_changes(session=uow.session, county_code=code)
    return {"county_code": code, "changes": changes}
