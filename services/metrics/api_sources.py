"""Routes of the source figures 来源指标 (thin): 有效上报率, 自处置率, 误报率, 监管任务指标, 自动恢复.

Apart from the units' incident indicators; see :mod:`services.metrics.source_indicators`.
与单位事件处置指标分开统计。
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from services.metrics.access import narrowed
from services.metrics.api_common import State, parse_period_id, refusals_as_http
from services.metrics.context import utc_now
from services.metrics.source_store import source_figures
from shared.answers import Answer, documented
from shared.auth import StaffPrincipal, require_roles
from shared.visibility import Viewer

router = APIRouter()
TAG = "metrics 来源指标"

Supervisor = Annotated[StaffPrincipal, Depends(require_roles("admin", "dispatcher", "township_admin"))]
PeriodId = Annotated[str, Query(description="2026-11, 2026-W47, 2026-Q4, 2026, 2026-11-20 or A..B")]
Township = Annotated[str | None, Query(description="one township (county-wide tokens); others see their own")]


class SourceFigures(Answer):
    """One figure set of a period 来源指标: its rows (rates are null when nothing was counted)."""

    period: str
    township: str | None
    figures: str
    rows: list[dict[str, Any]]


async def _answer(state: State, figures: str, period_id: str, principal: StaffPrincipal, township: str | None) -> Any:
    period = parse_period_id(period_id)
    with refusals_as_http():
        township = narrowed(Viewer.of(principal), "township", township)
        async with state.runtime.uow() as uow:
            rows = await source_figures(
                session=uow.session, figures=figures, period=period, township=township, as_of=utc_now()
            )
    return {"period": period.id, "township": township, "figures": figures, "rows": rows}


@router.get(
    "/v1/metrics/reporters",
    **documented(SourceFigures),
    tags=[TAG],
    summary="Grid workers' 有效上报率 and 自处置率 网格员上报质量",
    description="Per grid worker: reports, reports marked invalid (不予立案/作废), self-handled reports; "
    "valid_rate = (reports − invalid) ÷ reports, self_handled_rate = self-handled ÷ reports.",
)
async def get_reporters(state: State, principal: Supervisor, period: PeriodId, township: Township = None) -> Any:
    return await _answer(state, "reporters", period, principal, township)


@router.get(
    "/v1/metrics/devices",
    **documented(SourceFigures),
    tags=[TAG],
    summary="Per-device 误报率 设备误报率",
    description="Per monitoring device: alarm cases, alarms counted into them (告警次数), cases marked false "
    "(误报), cases closed by 自动恢复; false_alarm_rate = false ÷ cases.",
)
async def get_devices(state: State, principal: Supervisor, period: PeriodId, township: Township = None) -> Any:
    return await _answer(state, "devices", period, principal, township)


@router.get(
    "/v1/metrics/supervision",
    **documented(SourceFigures),
    tags=[TAG],
    summary="Supervision tasks' 按期检查率 and 整改率 监管任务指标",
    description="Per unit and township, its supervision tasks (事中事后监管), kept apart from incident handling: "
    "checked_on_time_rate = checked by the deadline ÷ due; rectify_rate = 责令整改 ÷ checked; case_opened = 立案查处.",
)
async def get_supervision(state: State, principal: Supervisor, period: PeriodId, township: Township = None) -> Any:
    return await _answer(state, "supervision", period, principal, township)


@router.get(
    "/v1/metrics/auto-recovered",
    **documented(SourceFigures),
    tags=[TAG],
    summary="Alarm cases closed by 自动恢复, per unit 自动恢复案件数",
    description="Counted apart from the unit's 办结: the alarm cleared before the unit accepted the case.",
)
async def get_auto_recovered(state: State, principal: Supervisor, period: PeriodId, township: Township = None) -> Any:
    return await _answer(state, "auto_recovered", period, principal, township)
