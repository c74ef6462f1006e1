"""Loading the facts behind the source figures 来源指标的数据读取 (use case; reads only).

The cases reported in the period (``reported_at`` in ``[start, end)``), of one township or the
whole county, as :class:`~services.metrics.facts.CaseFact`; the figures are computed by
:mod:`services.metrics.source_indicators`. 读取周期内上报的案件事实，指标由 source_indicators 计算。
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.facts import CaseFact
from services.metrics.models import case_facts
from services.metrics.periods import Period
from services.metrics.source_indicators import (
    auto_recovered_counts,
    device_rates,
    reporter_rates,
    supervision_rates,
)

__all__ = ["FIGURES", "source_figures"]

_FIELDS: Final = tuple(name for name in CaseFact.model_fields if name in case_facts.c)

#: The figure sets: name → what to compute from the facts. 指标集。
FIGURES: Final = ("reporters", "devices", "supervision", "auto_recovered")


async def _facts(session: AsyncSession, period: Period, township: str | None) -> list[CaseFact]:
    f = case_facts.c
    stmt = select(*(f[name] for name in _FIELDS)).where(f.reported_at >= period.start, f.reported_at < period.end)
    if township is not None:
        stmt = stmt.where(f.township == township)
    facts: list[CaseFact] = []
    for row in (await session.execute(stmt)).mappings():
        data = dict(row)
        data["case_id"] = str(data["case_id"])
        facts.append(CaseFact.model_validate(data))
    return facts


async def source_figures(
    *, session: AsyncSession, figures: str, period: Period, township: str | None, as_of: datetime
) -> list[dict[str, Any]]:
    """The rows of one figure set for the period (see :data:`FIGURES`). 一个指标集的各行。"""
    facts = await _facts(session, period, township)
    if figures == "reporters":
        return reporter_rates(facts)
    if figures == "devices":
        return device_rates(facts)
    if figures == "supervision":
        return supervision_rates(facts, min(as_of, period.end))
    if figures == "auto_recovered":
        return auto_recovered_counts(facts)
    raise ValueError(f"unknown figures {figures!r}")
