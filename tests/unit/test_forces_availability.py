"""Duty and availability 值班与在岗 (services/dispatch/forces/availability.py): across midnight, weekends,
the working calendar (holidays and 调休 working weekends), busy/free. Times are Asia/Shanghai (+08:00)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

from services.dispatch.forces.availability import MemberStatus, RosterIndex, availability, shift_window
from services.dispatch.forces.people import ShiftSpec
from shared.calendar import default_calendar

CST = timezone(timedelta(hours=8))
CAL = default_calendar()


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=CST)


def shift(start: str, end: str, members: list[str], **kw: object) -> ShiftSpec:
    return ShiftSpec.model_validate({"unit": "U", "start": start, "end": end, "members": members, **kw})


NIGHT = shift("20:00", "08:00", ["N"], label="夜班")
DAY = shift("08:00", "20:00", ["D"], label="白班")
OFFICE = shift("08:30", "17:30", ["O"], days="working_days", label="工作日")
REST = shift("09:00", "17:00", ["O"], days="rest_days", label="休息日值班")
ROUND = shift("08:00", "08:00", ["R"], label="24小时")
INDEX = RosterIndex([NIGHT, DAY, OFFICE, REST, ROUND])


def test_night_shift_runs_across_midnight() -> None:
    # Friday 2026-12-04 20:00 → Saturday 08:00: at 02:00 Saturday the member is on Friday's shift.
    duty = INDEX.duty("N", at(2026, 12, 5, 2), CAL)
    assert duty is not None and duty.since == at(2026, 12, 4, 20) and duty.until == at(2026, 12, 5, 8)
    assert INDEX.duty("N", at(2026, 12, 5, 8), CAL) is None  # the end is exclusive
    assert INDEX.duty("N", at(2026, 12, 5, 19, 59), CAL) is None
    assert INDEX.duty("N", at(2026, 12, 5, 20), CAL).since == at(2026, 12, 5, 20)  # type: ignore[union-attr]
    # The window is computed in local time whatever zone the moment comes in: 02:00 CST = 18:00 UTC the day before.
    utc = at(2026, 12, 5, 2).astimezone(UTC)
    assert INDEX.duty("N", utc, CAL) == INDEX.duty("N", at(2026, 12, 5, 2), CAL)


def test_daily_shifts_run_on_weekends_and_holidays() -> None:
    # 24-hour teams: Saturday 2026-12-05 and National Day 2026-10-01 (Thursday) alike.
    assert INDEX.duty("D", at(2026, 12, 5, 12), CAL) is not None
    assert INDEX.duty("D", at(2026, 10, 1, 12), CAL) is not None
    # A 24-hour shift (end == start): 08:00 to 08:00 the next day; at 07:59 it is yesterday's window.
    duty = INDEX.duty("R", at(2026, 12, 6, 7, 59), CAL)
    assert duty is not None and duty.since == at(2026, 12, 5, 8) and duty.until == at(2026, 12, 6, 8)


def test_office_hours_follow_the_working_calendar() -> None:
    # Friday 2026-12-04 10:00: a working day → on the 工作日 shift since 08:30.
    duty = INDEX.duty("O", at(2026, 12, 4, 10), CAL)
    assert duty is not None and duty.label == "工作日" and duty.since == at(2026, 12, 4, 8, 30)
    assert INDEX.duty("O", at(2026, 12, 4, 18), CAL) is None  # after 17:30
    # Saturday 2026-12-05 10:00: a rest day → the 休息日值班 shift (09:00–17:00), not the office one.
    assert INDEX.duty("O", at(2026, 12, 5, 10), CAL).label == "休息日值班"  # type: ignore[union-attr]
    assert INDEX.duty("O", at(2026, 12, 5, 8, 45), CAL) is None
    # National Day, Thursday 2026-10-01: a holiday → rest-day rule; Saturday 2026-10-10: 调休, a working day.
    assert INDEX.duty("O", at(2026, 10, 1, 10), CAL).label == "休息日值班"  # type: ignore[union-attr]
    assert INDEX.duty("O", at(2026, 10, 10, 10), CAL).label == "工作日"  # type: ignore[union-attr]


def test_listed_dates_and_the_window_of_a_day() -> None:
    special = shift("22:00", "06:00", ["S"], days="dates", dates=["2026-12-31"])
    assert shift_window(special, date(2026, 12, 30), CAL) is None
    assert shift_window(special, date(2026, 12, 31), CAL) == (at(2026, 12, 31, 22), at(2027, 1, 1, 6))
    assert RosterIndex([special]).duty("S", at(2027, 1, 1, 3), CAL) is not None


def test_overlapping_shifts_report_the_longest_on_duty() -> None:
    both = RosterIndex([shift("08:00", "20:00", ["X"], label="a"), shift("12:00", "14:00", ["X"], label="b")])
    assert both.duty("X", at(2026, 12, 4, 13), CAL).label == "a"  # type: ignore[union-attr]


def test_available_means_on_duty_and_not_busy() -> None:
    duty = INDEX.duty("D", at(2026, 12, 4, 9), CAL)
    free = availability(duty, None)
    assert free.available and not free.busy and "08:00" in free.reason_zh
    busy = availability(duty, MemberStatus(busy=True, reason="请假"))
    assert not busy.available and busy.busy and "请假" in busy.reason_zh
    assert availability(duty, MemberStatus(busy=False)).available
    off = availability(None, None)
    assert not off.available and off.reason_zh.startswith("不在班")


def test_time_fields_parse_as_local_times() -> None:
    assert NIGHT.start == time(20, 0) and NIGHT.end == time(8, 0)
