"""The SQL of the metrics service against its pure rules, on real PostgreSQL.

* Each ``count(*) FILTER (WHERE …)`` of :mod:`services.metrics.queries` must count exactly what
  :func:`services.metrics.fact_counts.fact_counts` counts, for random case lives and several ``as_of``.
* The SQL working-time expression (:class:`services.metrics.worktime.SqlWorkingTime`, used to
  recompute all stored durations) must equal ``shared.calendar`` on random intervals —
  including lunch breaks, period edges, holidays, 调休 make-up days and a provisional year.
SQL 聚合与纯规则逐项一致；SQL 工作时长与日历模块一致。
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.metrics.fact_counts import fact_counts, unit_counts
from services.metrics.facts import CaseFact
from services.metrics.models import case_facts
from services.metrics.periods import TZ, parse_period
from services.metrics.queries import Filters, case_contributions, grouped_indicators
from services.metrics.store import fact_row
from services.metrics.worktime import durations, recompute_working_durations
from shared.calendar import load_calendar
from shared.db import create_engine, session_factory
from tests.unit.test_metrics_rules import Case, dispatch, finish

CALENDAR = load_calendar()


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    try:
        yield eng
    finally:
        await eng.dispose()


def random_case(rng: random.Random) -> Case:
    """A random but valid case life in November 2026. 随机案件流转。"""
    case = Case(str(uuid.uuid4()))
    start = datetime(2026, 10, 28, tzinfo=TZ) + timedelta(minutes=rng.randrange(40 * 24 * 60))
    unit, township = rng.choice([("A", "T1"), ("B", "T1"), ("C", "T2"), ("D", "T3")])
    dispatch(case, unit, township, start, days=rng.choice([1, 2, 3, 5]))
    t = start + timedelta(hours=rng.uniform(0.2, 30))
    if rng.random() < 0.15:  # 退单, ruled valid (→ re-dispatched) or invalid (stays, counts against)
        case.add("case.rejected", t, rejected_unit=unit, reason="非本单位职责")
        valid = rng.random() < 0.5
        case.add("case.rejection_ruled", t + timedelta(hours=1), rejected_unit=unit, valid=valid)
        t += timedelta(hours=2)
        if valid:
            unit = rng.choice([u for u in ("A", "B", "C", "D") if u != unit])
            case.add("case.dispatched", t, unit=unit, township=township)
    if rng.random() < 0.1:
        case.add("case.merged", t, into=str(uuid.uuid4()))
        return case
    if rng.random() < 0.85:
        case.add("case.accepted", t + timedelta(hours=rng.uniform(0, 40)))
    if rng.random() < 0.2:
        new_deadline = start + timedelta(days=rng.choice([4, 6, 9]))
        case.add("case.extension_requested", t + timedelta(days=1), requested_deadline=new_deadline)
        case.add("case.extended", t + timedelta(days=1, hours=2), deadline=new_deadline.isoformat())
    if rng.random() < 0.1:
        case.add("case.supervised", t + timedelta(days=1, hours=3))
    if rng.random() < 0.25:
        return case  # still open 在办
    resolved = start + timedelta(hours=rng.uniform(3, 200))
    if rng.random() < 0.2:  # 返工
        case.add("case.resolved", resolved)
        case.add("case.verified", resolved + timedelta(hours=1), passed=False)
        resolved += timedelta(hours=rng.uniform(2, 48))
    if rng.random() < 0.15:
        case.add("case.resolved", resolved)  # awaiting 核查
        return case
    finish(case, resolved)
    if rng.random() < 0.5:
        case.add(
            "case.callback_recorded",
            resolved + timedelta(days=1),
            satisfaction=rng.choice(["satisfied", "basically_satisfied", "unsatisfied"]),
            solved=rng.random() < 0.7,
            valid=rng.random() < 0.9,
        )
    return case


async def test_sql_counts_equal_the_pure_rules(engine: AsyncEngine) -> None:
    rng = random.Random(1124)
    facts: list[CaseFact] = [random_case(rng).fact() for _ in range(400)]
    async with engine.begin() as conn:
        await conn.execute(delete(case_facts))
        await conn.execute(insert(case_facts), [fact_row(f, CALENDAR) for f in facts])
    period = parse_period("2026-11")
    sessions = session_factory(engine)
    for as_of in (
        datetime(2026, 11, 3, 12, tzinfo=TZ),
        datetime(2026, 11, 15, tzinfo=TZ),
        datetime(2026, 11, 30, 17, 29, 59, tzinfo=TZ),
        period.end,
        datetime(2027, 1, 20, tzinfo=TZ),
    ):
        in_period = [f for f in facts if f.dispatched_at is not None and f.dispatched_at in period]
        expected = unit_counts(in_period, as_of)
        async with sessions() as session:
            rows, total = await grouped_indicators(
                session=session, period=period, as_of=as_of, group_by=["unit", "township"], filters=Filters()
            )
        got = {(r["unit"], r["township"]): r["counts"] for r in rows}
        assert got == expected, as_of
        assert total["counts"] == {k: sum(c[k] for c in expected.values()) for k in total["counts"]}
        # per case: each row's 0/1 contributions equal fact_counts
        async with sessions() as session:
            _, page = await case_contributions(
                session=session, period=period, as_of=as_of, unit="A", township=None, limit=1000, offset=0
            )
        by_id = {f.case_id: f for f in facts}
        assert page, "unit A has cases"
        for item in page:
            assert item["counts"] == fact_counts(by_id[item["case_id"]], as_of), item["case_id"]


def random_moment(rng: random.Random) -> datetime:
    """A time in 2025–2027, often on a working-period edge or in the lunch break."""
    day = datetime(2025, 1, 1, tzinfo=TZ) + timedelta(days=rng.randrange(3 * 365))
    clock = rng.choice(
        [(8, 30, 0), (12, 0, 0), (13, 30, 0), (17, 30, 0), (12, 45, 0), (7, 0, 0), (23, 59, 59)]
        + [(rng.randrange(24), rng.randrange(60), rng.randrange(60))] * 4
    )
    return day.replace(hour=clock[0], minute=clock[1], second=clock[2], microsecond=rng.randrange(10**6))


async def test_sql_working_time_equals_the_calendar(engine: AsyncEngine) -> None:
    rng = random.Random(2026)
    rows: list[dict[str, Any]] = []
    for _ in range(2000):
        reported = random_moment(rng)
        dispatched = reported + timedelta(minutes=rng.randrange(0, 3000))
        resolved = dispatched + timedelta(minutes=rng.randrange(0, 60 * 24 * 40)) if rng.random() < 0.9 else None
        closed = (resolved + timedelta(minutes=rng.randrange(0, 60 * 24 * 3))) if resolved else None
        d = durations(CALENDAR, reported_at=reported, dispatched_at=dispatched, resolved_at=resolved, closed_at=closed)
        rows.append(
            {
                "case_id": uuid.uuid4(),
                "reported_at": reported,
                "dispatched_at": dispatched,
                "resolved_at": resolved,
                "closed_at": closed,
                "handling_natural_h": d.handling_natural_h,
                "handling_working_h": d.handling_working_h,
                "closing_natural_h": d.closing_natural_h,
                "closing_working_h": d.closing_working_h,
                "durations_provisional": d.provisional,
            }
        )
    assert any(r["durations_provisional"] for r in rows) and not all(r["durations_provisional"] for r in rows)
    async with engine.begin() as conn:
        await conn.execute(delete(case_facts))
        await conn.execute(insert(case_facts), rows)
        # stored by Python; SQL recompute agrees → nothing to write
        assert await recompute_working_durations(conn=conn, calendar=CALENDAR) == 0
        await conn.execute(
            update(case_facts).values(handling_working_h=None, closing_working_h=None, durations_provisional=False)
        )
        changed = await recompute_working_durations(conn=conn, calendar=CALENDAR)
        stored = {
            r.case_id: r
            for r in (
                await conn.execute(
                    select(
                        case_facts.c.case_id,
                        case_facts.c.handling_working_h,
                        case_facts.c.closing_working_h,
                        case_facts.c.durations_provisional,
                    )
                )
            ).all()
        }
        await conn.execute(text("DELETE FROM metrics.case_facts"))
    assert changed == sum(1 for r in rows if r["handling_working_h"] is not None or r["durations_provisional"])
    for r in rows:
        s = stored[r["case_id"]]
        assert s.handling_working_h == pytest.approx(r["handling_working_h"], abs=1e-9)
        assert s.closing_working_h == pytest.approx(r["closing_working_h"], abs=1e-9)
        assert s.durations_provisional == r["durations_provisional"]
