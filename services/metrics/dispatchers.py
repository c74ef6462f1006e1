"""Dispatchers' 准确派遣率 (dispatch quality 派遣质量), per dispatcher and period.

A dispatcher's hand dispatches (手动派遣 ``case.assigned`` and 改派 ``case.reassigned`` by a dispatcher
or admin) are recorded on the case fact (:class:`services.metrics.facts.HandDispatch`). 准确派遣率 =
hand dispatches that were neither rejected validly by the unit (判定退单有效) nor reassigned away from
it afterwards / hand dispatches (the team's domain notes, "Who a figure counts for"). The population
of a period is the hand dispatches made in it (by ``as_of``), merged cases left out.
派遣员准确派遣率 = 未被有效退单且未被改派走的人工派遣 / 人工派遣。

:func:`dispatcher_counts` is the pure rule; :func:`dispatcher_table` the same count in ONE grouped
query over ``metrics.case_facts`` (a test compares them). It takes the session by keyword and never
commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Boolean, DateTime, cast, column, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.facts import CaseFact
from services.metrics.indicators import empty_counts, rates_from_counts
from services.metrics.models import case_facts as F
from services.metrics.periods import Period

__all__ = ["dispatcher_counts", "dispatcher_table"]

_HAND: Final = (
    func.jsonb_array_elements(F.c.hand_dispatches).table_valued(column("value", JSONB)).render_derived(name="hand")
)


def dispatcher_counts(
    facts: Iterable[CaseFact], start: datetime, end: datetime, as_of: datetime
) -> dict[str, dict[str, int]]:
    """Per dispatcher: hand dispatches in ``[start, end)`` made by ``as_of``, and the accurate ones.

    派遣员的人工派遣数与准确派遣数（周期内、截至 ``as_of``）；并案的案件不计。
    """
    out: dict[str, dict[str, int]] = {}
    for fact in facts:
        if fact.merged_into is not None:
            continue
        for hand in fact.hand_dispatches:
            if start <= hand.at < end and hand.at <= as_of:
                row = out.setdefault(hand.by, empty_counts())
                row["hand_dispatched"] += 1
                row["accurately_dispatched"] += int(hand.accurate)
    return out


async def dispatcher_table(*, session: AsyncSession, period: Period, as_of: datetime) -> list[dict[str, Any]]:
    """Each dispatcher's counts and 准确派遣率 in ``period`` as of ``as_of``, by dispatcher id.

    每个派遣员的人工派遣数、准确派遣数与准确派遣率。
    """
    value = _HAND.c.value
    at = cast(value["at"].astext, DateTime(timezone=True))
    dispatcher = value["by"].astext.label("dispatcher")
    stmt = (
        select(
            dispatcher,
            func.count().label("hand_dispatched"),
            func.count().filter(cast(value["accurate"].astext, Boolean)).label("accurately_dispatched"),
        )
        .select_from(F.join(_HAND, literal(True)))
        .where(
            F.c.merged_into.is_(None),
            at >= literal(period.start, DateTime(timezone=True)),
            at < literal(period.end, DateTime(timezone=True)),
            at <= literal(as_of, DateTime(timezone=True)),
        )
        .group_by(dispatcher)
        .order_by(dispatcher)
    )
    rows: list[dict[str, Any]] = []
    for raw in (await session.execute(stmt)).mappings():
        counts = empty_counts()
        counts["hand_dispatched"] = int(raw["hand_dispatched"])
        counts["accurately_dispatched"] = int(raw["accurately_dispatched"])
        rates = rates_from_counts(counts)
        rows.append(
            {
                "dispatcher": raw["dispatcher"] or "unknown",
                "hand_dispatched": counts["hand_dispatched"],
                "accurately_dispatched": counts["accurately_dispatched"],
                "accurate_dispatch_rate": rates["accurate_dispatch_rate"],
            }
        )
    return rows
