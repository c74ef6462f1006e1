"""The what-if routes 模拟调整接口: a proposed devolution change over a past period, as JSON or xlsx.

``POST /v1/whatif`` and ``POST /v1/whatif.xlsx`` (admin, county-wide dispatcher): the cases of the period
routed again against the proposed list — reads only, no writes, no events
(:mod:`services.dispatch.whatif_store`). 提案与历史期间 → 改派、单位负荷、镇街负荷（只读）。
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import JSONResponse, Response

from services.dispatch.api_common import Ctx, Dispatcher
from services.dispatch.whatif_store import XLSX_MEDIA_TYPE, WhatIfInvalidError, WhatIfRequest, run_what_if, to_xlsx
from shared.answers import Answer, documented
from shared.auth import StaffPrincipal

router = APIRouter()

TAG = "what-if 模拟调整"

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown token 缺少或未知令牌"},
    403: {"description": "not a county-wide admin or dispatcher token 非全县管理员或派遣员令牌"},
    422: {"description": "bad body, or the proposal names unknown things (`problems`) 提案有误"},
    503: {"description": "no jurisdiction snapshot loaded yet, or database unavailable 辖区未加载或数据库不可用"},
}
_DESCRIPTION = (
    "Body: `{items: [{township, matter, mode: devolved | entrusted | assist | none}], reported_from, reported_to, "
    "threshold_pct?}`. Every case reported in the period (Asia/Shanghai days, not merged, not self-handled) is "
    "routed again with pure routing against the current list with the proposal in force on every day — no writes, "
    "no events. Answers the cases that would move (`moves`: matter, from → to, cases, hours), each unit's case "
    "count and working-hour load (`hours`: the 办结 time limit routing sets, in hours) before and after "
    "(`units`), and each township's own units' load with `over_threshold` when it grows more than "
    "`threshold_pct` (`townships`)."
)


class WhatIfAnswer(Answer):
    """A what-if's answer 模拟调整结果."""

    county_code: str
    jurisdiction_version: int
    reported_from: str
    reported_to: str
    threshold_pct: float
    items: list[dict[str, Any]]
    cases: int
    affected_cases: int
    moved_cases: int
    moves: list[dict[str, Any]]
    units: list[dict[str, Any]]
    townships: list[dict[str, Any]]


async def _answer(ctx: Any, request: WhatIfRequest, principal: StaffPrincipal) -> dict[str, Any] | JSONResponse:
    if principal.township != "*":  # the answer covers every township's cases 结果覆盖全县案件
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a what-if covers the whole county: a county-wide token only")
    loaded = ctx.source.current
    if loaded is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "辖区尚未加载 / no jurisdiction snapshot yet")
    try:
        async with ctx.runtime.uow() as uow:
            return await run_what_if(session=uow.session, jurisdiction=loaded, request=request)
    except WhatIfInvalidError as exc:
        return JSONResponse(
            {
                "detail": f"proposal rejected: {len(exc.problems)} problem(s) 提案有误",
                "problems": [p.to_dict() for p in exc.problems],
            },
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )


@router.post(
    "/v1/whatif",
    tags=[TAG],
    summary="What-if of a devolution proposal over a past period 模拟调整",
    description=_DESCRIPTION,
    **documented(WhatIfAnswer, extra=_ERRORS),
)
async def post_what_if(ctx: Ctx, body: WhatIfRequest, principal: Dispatcher) -> Any:
    return await _answer(ctx, body, principal)


@router.post(
    "/v1/whatif.xlsx",
    tags=[TAG],
    summary="The same what-if as a workbook 模拟调整导出 xlsx",
    description=_DESCRIPTION + " Sheets: 提案, 改派, 单位负荷, 镇街负荷.",
    **documented(WhatIfAnswer, extra=_ERRORS, description="the workbook (" + XLSX_MEDIA_TYPE + ")"),
)
async def post_what_if_xlsx(ctx: Ctx, body: WhatIfRequest, principal: Dispatcher) -> Response:
    answer = await _answer(ctx, body, principal)
    if isinstance(answer, JSONResponse):
        return answer
    return Response(
        to_xlsx(answer),
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="whatif.xlsx"'},
    )
