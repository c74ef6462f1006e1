"""Calendars past 2026: loading the 2027 holiday notice recomputes provisional deadlines (pure rule,
:mod:`services.dispatch.deadline_recompute`). The hand arithmetic is written beside each figure.

The notice used here is a plausible one written for the test (国庆 10/1–10/7 off, make-up working days
Sun 9/26 and Sat 10/9), not the State Council's real 2027 notice, which is not published yet.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from services.dispatch.deadline_recompute import RECOMPUTED_KEY, recompute, routed_deadline
from shared.calendar import SHANGHAI, WorkingCalendar
from shared.calendar_config import CalendarConfig, HolidayNotice

PROVISIONAL = WorkingCalendar(CalendarConfig())
NOTICE_2027 = HolidayNotice(
    rest_days=frozenset(date(2027, 10, d) for d in range(1, 8)),
    working_days=frozenset({date(2027, 9, 26), date(2027, 10, 9)}),
    document="测试用通知 (test notice)",
)
FINAL = WorkingCalendar(CalendarConfig(notices={2027: NOTICE_2027}))

START = datetime(2027, 9, 30, 10, 0, tzinfo=SHANGHAI)  # Thursday 10:00, a 12345 一般件: 5 working days
ROUTED_DUE = datetime(2027, 10, 12, 10, 0, tzinfo=SHANGHAI)
FINAL_DUE = datetime(2027, 10, 13, 10, 0, tzinfo=SHANGHAI)


def explanation(**extra: Any) -> dict[str, Any]:
    return {
        "decided_at": START.isoformat(),
        "deadline": ROUTED_DUE.isoformat(),
        "deadline_hours": None,
        "deadline_working_days": 5,
        "time_basis": "working",
        **extra,
    }


def test_2027_is_provisional_until_the_notice_is_loaded() -> None:
    # Statutory holidays by rule: 国庆 10/1–10/3 (Fri–Sun), the Sat/Sun ones made up on Mon 10/4, Tue 10/5
    assert not PROVISIONAL.is_working_day(date(2027, 10, 1))
    assert not PROVISIONAL.is_working_day(date(2027, 10, 5))
    assert PROVISIONAL.is_working_day(date(2027, 10, 6))
    assert PROVISIONAL.is_provisional(date(2027, 10, 1)) and not FINAL.is_provisional(date(2027, 10, 1))
    assert (PROVISIONAL.national.source(2027), FINAL.national.source(2027)) == ("statutory", "notice")
    # With the notice: 10/6 and 10/7 are off, Sat 10/9 is a make-up working day
    assert not FINAL.is_working_day(date(2027, 10, 6)) and FINAL.is_working_day(date(2027, 10, 9))


def test_the_routed_deadline_and_its_recompute_by_hand() -> None:
    # Provisional: after Thu 9/30 the days off are 10/1–10/5; working days 10/6 (1), 10/7 (2), 10/8 (3),
    # [Sat 10/9, Sun 10/10 off], 10/11 (4), 10/12 (5) → Tue 10/12 10:00
    assert PROVISIONAL.add_working_days(START, 5) == ROUTED_DUE
    # Final: 10/1–10/7 off; 10/8 (1), Sat 10/9 make-up (2), [Sun 10/10], 10/11 (3), 10/12 (4), 10/13 (5)
    # → Wed 10/13 10:00; the 签收期限 (1 working day): 10/6 10:00 before, Fri 10/8 10:00 after
    routed = routed_deadline(explanation())
    assert routed is not None and routed.deadline == ROUTED_DUE
    change = recompute(
        calendar=FINAL,
        routed=routed,
        deadline=ROUTED_DUE,
        accept_by=datetime(2027, 10, 6, 10, tzinfo=SHANGHAI),
        accepted=False,
        provisional=True,
        overdue=False,
        now=datetime(2026, 12, 4, 9, tzinfo=SHANGHAI),
    )
    assert change is not None
    assert (change.old_deadline, change.deadline, change.provisional, change.overdue) == (
        ROUTED_DUE, FINAL_DUE, False, False,
    )  # fmt: skip
    assert change.accept_deadline == datetime(2027, 10, 8, 10, tzinfo=SHANGHAI)
    assert "2027-10-12T10:00+08:00 → 2027-10-13T10:00+08:00" in change.reason


def test_loading_the_same_notice_twice_changes_nothing() -> None:
    routed = routed_deadline(explanation(**{RECOMPUTED_KEY: {"deadline": FINAL_DUE.isoformat()}}))
    kwargs: dict[str, Any] = {
        "calendar": FINAL, "routed": routed, "deadline": FINAL_DUE, "accept_by": None, "accepted": True,
        "now": datetime(2026, 12, 4, tzinfo=SHANGHAI), "overdue": False,
    }  # fmt: skip
    assert recompute(provisional=False, **kwargs) is None  # final already: not a candidate
    routed_again = routed_deadline(explanation())
    same = recompute(
        calendar=PROVISIONAL, routed=routed_again, deadline=ROUTED_DUE, accept_by=None, accepted=True,
        provisional=True, overdue=False, now=datetime(2026, 12, 4, tzinfo=SHANGHAI),
    )  # fmt: skip
    assert same is None  # the provisional calendar gives 10/12 again and it stays provisional


def test_overdue_flag_cleared_never_set() -> None:
    routed = routed_deadline(explanation())
    # Flagged overdue at Tue 10/12 12:00 (past 10/12 10:00); the final deadline 10/13 10:00 is ahead → cleared
    noon = datetime(2027, 10, 12, 12, tzinfo=SHANGHAI)
    cleared = recompute(calendar=FINAL, routed=routed, deadline=ROUTED_DUE, accept_by=None, accepted=True,
                        provisional=True, overdue=True, now=noon)  # fmt: skip
    assert cleared is not None and cleared.overdue is False and "撤销超期标记" in cleared.reason
    # Not flagged and past even the final deadline (10/14): the recompute does not flag it (the sweep will)
    later = recompute(calendar=FINAL, routed=routed, deadline=ROUTED_DUE, accept_by=None, accepted=True,
                      provisional=True, overdue=False, now=FINAL_DUE + timedelta(days=1))  # fmt: skip
    assert later is not None and later.overdue is False and later.deadline == FINAL_DUE


def test_a_deadline_set_by_a_person_is_kept() -> None:
    extended = datetime(2027, 10, 20, 17, 30, tzinfo=SHANGHAI)  # an approved 延期: not routing's deadline
    change = recompute(calendar=FINAL, routed=routed_deadline(explanation()), deadline=extended, accept_by=None,
                       accepted=True, provisional=True, overdue=False, now=START)  # fmt: skip
    assert change is None
    assert routed_deadline({"decided_at": START.isoformat(), "deadline": None}) is None  # nothing to recompute
