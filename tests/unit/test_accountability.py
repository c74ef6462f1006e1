"""监督问责 report rules (services.metrics.accountability), with the expected figures worked by hand."""

from __future__ import annotations

from datetime import datetime
from itertools import count
from typing import Any

from services.metrics.accountability import AccountabilityRules, accountability_report, earliest_supervision
from services.metrics.facts import CaseEventRecord, CaseFact
from services.metrics.periods import TZ, parse_period
from shared.calendar import WorkingCalendar

NOV = parse_period("2026-11")
AS_OF = datetime(2026, 12, 4, 12, 0, tzinfo=TZ)
CAL = WorkingCalendar()
_ids = count(1)


def t(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


def fact(case_id: str, unit: str = "u-a", **fields: Any) -> CaseFact:
    return CaseFact(case_id=case_id, unit=unit, township="330127101", **fields)


def ev(case_id: str, type_: str, at: datetime, **data: Any) -> CaseEventRecord:
    n = next(_ids)
    return CaseEventRecord(event_id=f"e{n}", case_id=case_id, type=type_, occurred_at=at, version=n, data=data)


Findings = dict[tuple[str, str | None], list[str]]


def report(facts: list[CaseFact], events: list[CaseEventRecord], **rules: Any) -> Findings:
    by_case: dict[str, list[CaseEventRecord]] = {}
    for e in events:
        by_case.setdefault(e.case_id, []).append(e)
    result = accountability_report(
        period=NOV, as_of=AS_OF, facts=facts, events=by_case, calendar=CAL, rules=AccountabilityRules(**rules)
    )
    return {(f.kind, f.unit): f.cases for f in result.findings}


def test_repeated_overdue_needs_three_cases_with_deadlines_in_the_period() -> None:
    facts = [
        # unit A: deadlines 11-03, 11-10, 11-20; finished late, late, still open → 3 overdue in November
        fact("a1", deadline=t(11, 3), resolved_at=t(11, 4)),
        fact("a2", deadline=t(11, 10), closed_at=t(11, 12)),
        fact("a3", deadline=t(11, 20)),
        fact("a4", deadline=t(11, 21), resolved_at=t(11, 21, 9)),  # on time: not counted
        fact("a5", deadline=t(10, 30)),  # October's deadline: October's finding
        # unit B: 2 overdue → below the default threshold of 3
        fact("b1", unit="u-b", deadline=t(11, 3)),
        fact("b2", unit="u-b", deadline=t(11, 4)),
        # merged cases leave every population
        fact("a6", deadline=t(11, 5), merged_into="a1"),
    ]
    got = report(facts, [])
    assert got == {("repeated_overdue", "u-a"): ["a1", "a2", "a3"]}
    # threshold 2: B appears too
    assert report(facts, [], repeated_overdue_min=2)[("repeated_overdue", "u-b")] == ["b1", "b2"]


def test_overdue_again_after_an_extension_counts_when_the_second_mark_falls_in_the_period() -> None:
    facts = [fact("c1"), fact("c2"), fact("c3")]
    events = [
        ev("c1", "case.overdue", t(10, 20)),
        ev("c1", "case.extended", t(10, 21)),
        ev("c1", "case.overdue", t(11, 2)),  # second mark in November → counted
        ev("c2", "case.overdue", t(11, 2)),  # once only
        ev("c3", "case.overdue", t(10, 2)),
        ev("c3", "case.overdue", t(10, 25)),  # second mark in October
    ]
    assert report(facts, events) == {("overdue_again", "u-a"): ["c1"]}


def test_rejections_ruled_invalid_count_for_the_rejecting_unit() -> None:
    facts = [fact("r1", unit="u-a"), fact("r2", unit="u-c"), fact("r3"), fact("r4")]
    events = [
        ev("r1", "case.rejection_ruled", t(11, 5), valid=False, rejected_unit="u-b"),
        ev("r2", "case.rejection_ruled", t(11, 6), valid=False, rejected_unit="u-b"),
        ev("r3", "case.rejection_ruled", t(11, 6), valid=True, rejected_unit="u-b"),  # valid: no finding
        ev("r4", "case.rejection_ruled", t(12, 1), valid=False, rejected_unit="u-b"),  # December
    ]
    assert report(facts, events) == {("rejection_overturned", "u-b"): ["r1", "r2"]}


def test_a_whistle_is_unanswered_when_no_report_in_by_its_deadline() -> None:
    facts = [fact("w1"), fact("w2"), fact("w3")]
    events = [
        ev("w1", "case.escalated", t(11, 9), department="d-env", report_deadline="2026-11-10T17:30:00+08:00"),
        ev("w1", "case.reported_in", t(11, 11)),  # a day late
        ev("w2", "case.escalated", t(11, 9), department="d-env", report_deadline="2026-11-10T17:30:00+08:00"),
        ev("w2", "case.reported_in", t(11, 10, 9)),  # in time
        ev("w3", "case.escalated", t(11, 9), department="d-water", report_deadline="2026-11-10T17:30:00"),
    ]
    assert report(facts, events) == {("whistle_unanswered", "d-env"): ["w1"], ("whistle_unanswered", "d-water"): ["w3"]}


def test_supervision_ignored_when_the_holder_does_nothing_within_one_working_day() -> None:
    facts = [fact("s1"), fact("s2"), fact("s3")]
    events = [
        # Friday 11-13 10:00 + 1 working day = Monday 11-16 10:00
        ev("s1", "case.supervised", t(11, 13), unit="u-a"),
        ev("s1", "case.accepted", t(11, 16, 10, 30), unit="u-a"),  # half an hour too late
        ev("s2", "case.supervised", t(11, 13), unit="u-a"),
        ev("s2", "case.extension_requested", t(11, 16, 9), unit="u-a"),  # in time
        ev("s3", "case.supervised", t(11, 30, 16), unit="u-a"),  # due 12-01 16:00: December's
    ]
    assert report(facts, events) == {("supervision_ignored", "u-a"): ["s1"]}


def test_reopened_or_reworked_more_than_once_counts_at_the_second_time() -> None:
    facts = [fact("o1"), fact("o2"), fact("o3")]
    events = [
        ev("o1", "case.reopened", t(11, 5)),
        ev("o1", "case.verified", t(11, 20), passed=False),  # second (rework) in November
        ev("o2", "case.reopened", t(11, 5)),
        ev("o2", "case.verified", t(11, 20), passed=True),  # passed: not a rework
        ev("o3", "case.verified", t(10, 5), passed=False),
        ev("o3", "case.reopened", t(10, 25)),  # both in October
    ]
    assert report(facts, events) == {("reopened_repeatedly", "u-a"): ["o1"]}


def test_findings_after_as_of_are_left_out_and_joint_operations_are_declared_not_covered() -> None:
    result = accountability_report(
        period=parse_period("2026-12"),
        as_of=AS_OF,
        facts=[fact("x1")],
        events={"x1": [ev("x1", "case.rejection_ruled", t(12, 10), valid=False, rejected_unit="u-b")]},
        calendar=CAL,
    )
    assert result.findings == ()
    assert result.not_covered == ("joint_operations",)


def test_earliest_supervision_whose_limit_can_fall_in_the_period() -> None:
    # November 2026 starts on Sunday 11-01. A 督办 at Friday 10-30 00:00 is due one working day after
    # the next working start, Friday 08:30 → Monday 11-02 08:30 (in November); at Thursday 10-29 00:00 it is
    # due Friday 10-30 08:30 (October), and so is every earlier one → the bound is Thursday 10-29 00:00.
    assert CAL.add_working_days(t(10, 30, 0), 1) == t(11, 2, 8, 30)
    assert CAL.add_working_days(t(10, 29, 0), 1) == t(10, 30, 8, 30)
    assert earliest_supervision(NOV, CAL, AccountabilityRules()) == t(10, 29, 0)
    # three working days: Tuesday 10-27 00:00 → Tue 08:30 + 3 = Friday 10-30 08:30 (October); 10-28 → 11-02
    assert CAL.add_working_days(t(10, 28, 0), 3) == t(11, 2, 8, 30)
    assert earliest_supervision(NOV, CAL, AccountabilityRules(supervision_limit_working_days=3)) == t(10, 27, 0)
