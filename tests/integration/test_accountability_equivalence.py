"""The 监督问责 report as loaded by ``accountability_store.load_report`` gives exactly the answer of the
first implementation (kept below as :func:`reference_report`: every event of every touched case,
folded with the consumer's reducer), on 2 000 seeded cases with every kind of finding
(``accountability_cases.py``), for several periods, townships, ``as_of`` times and thresholds; the
JSON and the xlsx cells alike. The events go in through the consumer's own ``apply_events``.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any, Final

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.metrics.accountability import (
    AccountabilityReport,
    AccountabilityRules,
    accountability_report,
    with_findings,
)
from services.metrics.accountability_store import load_report, report_xlsx
from services.metrics.facts import CaseEventRecord, reduce_events
from services.metrics.models import case_events, case_facts
from services.metrics.operation_store import load_operation_findings
from services.metrics.periods import TZ, Period, parse_period
from services.metrics.store import apply_events, event_record
from shared.calendar import WorkingCalendar, load_calendar
from shared.db import UnitOfWork, create_engine, session_factory
from tests.integration.accountability_cases import generate, odd_spellings

N_CASES: Final = 2_000
CALENDAR: Final[WorkingCalendar] = load_calendar()


async def reference_report(
    *,
    session: AsyncSession,
    period: Period,
    as_of: datetime,
    township: str | None,
    calendar: WorkingCalendar,
    rules: AccountabilityRules | None = None,
) -> AccountabilityReport:
    """The first ``load_report`` (main at 2c72364), verbatim: it reads every event of every case touched
    in the period or its 60-day lookback, or due in it, and folds each case with the reducer; then adds
    the joint operations' findings."""
    f, e = case_facts.c, case_events.c
    touched = select(e.case_id).where(e.occurred_at >= period.start - timedelta(days=60), e.occurred_at < period.end)
    due = select(f.case_id).where(f.deadline >= period.start, f.deadline < period.end)
    cases = select(f.case_id).where(f.case_id.in_(union(touched, due)))
    if township is not None:
        cases = cases.where(f.township == township)
    rows = (
        await session.execute(
            select(e.event_id, e.case_id, e.type, e.version, e.occurred_at, e.data)
            .where(e.case_id.in_(cases))
            .order_by(e.case_id)
        )
    ).all()
    events: dict[str, list[CaseEventRecord]] = {}
    for r in rows:
        events.setdefault(str(r.case_id), []).append(event_record(r))
    facts = [reduce_events(history) for history in events.values()]
    report = accountability_report(
        period=period, as_of=as_of, facts=facts, events=events, calendar=calendar, rules=rules
    )
    joint = await load_operation_findings(session=session, period=period, as_of=as_of, township=township)
    return with_findings(report, joint, covers="joint_operations")  # 联合执法未报到


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    records = [*generate(N_CASES), *odd_spellings()]
    sessions = session_factory(eng)
    for i in range(0, len(records), 2_000):
        async with UnitOfWork(sessions) as uow:
            await apply_events(session=uow.session, records=records[i : i + 2_000], calendar=CALENDAR)
    try:
        yield eng
    finally:
        await eng.dispose()


def _mid(period: Period) -> datetime:
    return period.start + (period.end - period.start) / 2


CASES: Final = [
    ("2026-09", None, None, {}),
    ("2026-10", None, None, {}),
    ("2026-10", "T2", None, {}),
    ("2026-11", None, None, {}),
    ("2026-11", "T3", "mid", {}),
    ("2026-11", None, "mid", {"repeated_overdue_min": 2, "supervision_limit_working_days": 3}),
    ("2026-12", None, datetime(2026, 12, 4, 12, 0, tzinfo=TZ), {}),
    ("2026-Q4", None, None, {"supervision_limit_working_days": 0}),
]


@pytest.mark.parametrize(("period_id", "township", "when", "rules"), CASES)
async def test_the_report_equals_the_first_implementation(
    engine: AsyncEngine, period_id: str, township: str | None, when: Any, rules: dict[str, int]
) -> None:
    period = parse_period(period_id)
    as_of = _mid(period) if when == "mid" else (when or period.end)
    kwargs: dict[str, Any] = {
        "period": period,
        "as_of": as_of,
        "township": township,
        "calendar": CALENDAR,
        "rules": AccountabilityRules(**rules),
    }
    async with session_factory(engine)() as session:
        expected = (await reference_report(session=session, **kwargs)).as_json()
    async with session_factory(engine)() as session:
        got = (await load_report(session=session, **kwargs)).as_json()
    assert got == expected
    assert expected["findings"], "the seeded cases give findings in every period"
    assert _cells(got) == _cells(expected)


def _cells(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    body = report_xlsx({**report, "signed_off": False}, title="监督问责", unit_names={"D1": "县城管局"})
    sheet = load_workbook(io.BytesIO(body)).active
    assert sheet is not None
    return [tuple(c.value for c in row) for row in sheet.iter_rows()]


async def test_october_county_wide_pinned(engine: AsyncEngine) -> None:
    """October, county-wide, as the first implementation answered it (recorded before the change): every
    kind of finding is there, the old whistles only where the case was touched in the lookback."""
    async with session_factory(engine)() as session:
        report = await load_report(
            session=session,
            period=parse_period("2026-10"),
            as_of=parse_period("2026-10").end,
            township=None,
            calendar=CALENDAR,
        )
    findings = report.as_json()["findings"]
    assert isinstance(findings, list)
    by_kind = Counter(f["kind"] for f in findings)
    cases_by_kind = Counter({k: 0 for k in by_kind})
    for f in findings:
        cases_by_kind[f["kind"]] += f["count"]
    assert (dict(by_kind), dict(cases_by_kind)) == PINNED_OCTOBER
    body = json.dumps(report.as_json(), sort_keys=True, ensure_ascii=False).encode()
    assert hashlib.sha256(body).hexdigest() == PINNED_OCTOBER_SHA256


#: Findings per kind and the cases they name, October county-wide (recorded from main at 2c72364).
PINNED_OCTOBER: Final[tuple[dict[str, int], dict[str, int]]] = (
    {
        "repeated_overdue": 28,
        "overdue_again": 27,
        "rejection_overturned": 15,
        "whistle_unanswered": 11,
        "supervision_ignored": 15,
        "reopened_repeatedly": 28,
    },
    {
        "repeated_overdue": 263,
        "overdue_again": 66,
        "rejection_overturned": 27,
        "whistle_unanswered": 25,
        "supervision_ignored": 18,
        "reopened_repeatedly": 132,
    },
)
#: The whole October report's JSON (sorted keys), recorded the same way.
PINNED_OCTOBER_SHA256: Final = "7171a0e17361ed570714f06837cbd1d498d8ea7d9f40bd841b8245b65549552e"


async def test_whistle_deadlines_spelled_without_a_leading_date(engine: AsyncEngine) -> None:
    """ISO basic and week-date spellings are still read (the SQL keeps what it cannot date), and an empty
    top-level deadline falls back to ``details``. November as of 11-20: D2's three whistles, due
    11-11 10:00, never answered."""
    period = parse_period("2026-11")
    async with session_factory(engine)() as session:
        report = await load_report(
            session=session,
            period=period,
            as_of=datetime(2026, 11, 20, tzinfo=TZ),
            township=None,
            calendar=CALENDAR,
        )
    odd = {e.case_id for e in odd_spellings()}
    found = {
        (f.township, c) for f in report.findings if f.kind == "whistle_unanswered" and f.unit == "D2" for c in f.cases
    }
    assert sorted(township for township, case in found if case in odd) == ["T1", "T2", "T3"]


async def test_a_period_without_cases_has_no_findings(engine: AsyncEngine) -> None:
    period = parse_period("2026-05")  # the seeded cases start in July
    async with session_factory(engine)() as session:
        report = await load_report(session=session, period=period, as_of=period.end, township=None, calendar=CALENDAR)
    assert report.findings == ()
