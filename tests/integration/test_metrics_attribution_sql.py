"""Who a figure counts for, in SQL: the rejecting units' rows and the dispatchers' counts of
:mod:`services.metrics.queries` / :mod:`services.metrics.dispatchers` equal the pure rules
(:func:`services.metrics.fact_counts.unit_counts`, :func:`services.metrics.dispatchers.dispatcher_counts`)
on real PostgreSQL. 退单单位行与派遣员计数：SQL 与纯规则一致。"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.metrics.dispatchers import dispatcher_counts, dispatcher_table
from services.metrics.fact_counts import unit_counts
from services.metrics.models import case_facts
from services.metrics.periods import parse_period
from services.metrics.queries import Filters, case_contributions, grouped_indicators, score_counts
from services.metrics.store import fact_row
from shared.calendar import load_calendar
from shared.db import create_engine, session_factory
from tests.unit.test_metrics_attribution import bounced_cases, dispatcher_cases

NOVEMBER = parse_period("2026-11")


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    facts = [*bounced_cases(), *dispatcher_cases()]
    async with eng.begin() as conn:
        await conn.execute(delete(case_facts))
        await conn.execute(insert(case_facts), [fact_row(f, load_calendar()) for f in facts])
    try:
        yield eng
    finally:
        await eng.dispose()


async def test_rejecting_units_rows_equal_the_pure_rule(engine: AsyncEngine) -> None:
    facts = [*bounced_cases(), *dispatcher_cases()]
    expected = unit_counts(facts, NOVEMBER.end)
    async with session_factory(engine)() as session:
        rows, total = await grouped_indicators(
            session=session, period=NOVEMBER, as_of=NOVEMBER.end, group_by=["unit", "township"], filters=Filters()
        )
        only_u1, _ = await grouped_indicators(
            session=session, period=NOVEMBER, as_of=NOVEMBER.end, group_by=["unit"], filters=Filters(unit="U1")
        )
        scored = await score_counts(session=session, period=NOVEMBER, as_of=NOVEMBER.end, by_township=False)
    assert {(r["unit"], r["township"]): r["counts"] for r in rows} == expected
    assert total["counts"]["received"] == sum(c["received"] for c in expected.values())
    # U1: the bounced cases' 收案 4, 退单 2 (tests/unit/test_metrics_attribution.py) + the dispatcher
    # cases U1 holds, x and w (x's rejection ruled valid: not counted; w's invalid: counted) → 收案 6, 退单 3
    [u1] = only_u1
    assert (u1["counts"]["received"], u1["counts"]["rejected"], u1["rates"]["rejection_rate"]) == (6, 3, 0.5)
    by_unit = {r["unit"]: r["counts"] for r in scored}
    assert by_unit["U1"] == expected[("U1", "T1")]


async def test_dispatcher_table_equals_the_pure_rule(engine: AsyncEngine) -> None:
    expected = dispatcher_counts(dispatcher_cases(), NOVEMBER.start, NOVEMBER.end, NOVEMBER.end)
    async with session_factory(engine)() as session:
        rows = await dispatcher_table(session=session, period=NOVEMBER, as_of=NOVEMBER.end)
    got = {r["dispatcher"]: (r["hand_dispatched"], r["accurately_dispatched"]) for r in rows}
    assert got == {d: (c["hand_dispatched"], c["accurately_dispatched"]) for d, c in expected.items()}
    # D1 2/3, D2 1/2 (hand arithmetic in the unit test)
    assert [(r["dispatcher"], r["accurate_dispatch_rate"]) for r in rows] == [("D1", pytest.approx(2 / 3)), ("D2", 0.5)]


async def test_the_cases_behind_a_row_include_the_ones_it_bounced(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        [u1], _ = await grouped_indicators(
            session=session, period=NOVEMBER, as_of=NOVEMBER.end, group_by=["unit"], filters=Filters(unit="U1")
        )
        total, page = await case_contributions(
            session=session, period=NOVEMBER, as_of=NOVEMBER.end, unit="U1", township=None, limit=100, offset=0
        )
    # U1's row: 收案 6 = the 5 cases it holds (own1, own2, invalid, x, w) + the one it bounced; the
    # bounced one contributes 收案 1 and 退单 1 only, so the cases add up to the row exactly
    assert total == len(page) == u1["counts"]["received"]
    assert {k: sum(c["counts"][k] for c in page) for k in u1["counts"]} == u1["counts"]
    bounced = [c for c in page if c["counts"]["dispatched"] == 0]
    assert [c["counts"]["rejected"] for c in bounced] == [1]  # the case it bounced to U2
