"""Indicators per group 分组指标 as ``GET /v1/indicators`` shows them: the grouped query with unit names
and unit-kind labels beside the codes. The function takes the session by keyword and never commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.periods import Period
from services.metrics.queries import Filters, grouped_indicators
from services.metrics.scoring import UNIT_KIND_LABELS
from services.metrics.units import unit_names

__all__ = ["indicator_table"]


async def indicator_table(
    *, session: AsyncSession, period: Period, as_of: datetime, group_by: list[str], filters: Filters
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows per group (named: ``unit_name``, ``kind_label``) and the total. 分组指标行与合计。"""
    rows, total = await grouped_indicators(
        session=session, period=period, as_of=as_of, group_by=group_by, filters=filters
    )
    names: dict[str, dict[str, Any]] = {}
    if "unit" in group_by:
        names = await unit_names(session=session, ids=[r["unit"] for r in rows if r.get("unit")])
    for row in rows:
        if "unit" in group_by:
            row["unit_name"] = (names.get(row["unit"]) or {}).get("name")
        if "kind" in group_by:
            row["kind_label"] = UNIT_KIND_LABELS.get(row["kind"] or "", None)
    return rows, total
