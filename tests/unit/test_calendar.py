"""Tests for the working-time calendar 工作日历 (shared/calendar.py)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import (
    DEFAULT_OVERRIDES_PATH,
    OVERRIDES_ENV,
    SHANGHAI,
    CalendarConfig,
    CalendarConfigError,
    CalendarRules,
    Deadline,
    WorkingCalendar,
    add_working_days,
    add_working_hours,
    deadline,
    default_calendar,
    is_provisional,
    is_working_day,
    is_working_time,
    load_calendar,
    natural_hours_between,
    working_hours_between,
)

CAL = WorkingCalendar()  # library calendar + default hours, no county overrides


def dt(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """Aware Asia/Shanghai datetime 北京时间."""
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


# --------------------------------------------------------------------------------------------
# Working days 工作日: weekends, holidays, make-up days 调休上班
# --------------------------------------------------------------------------------------------

_GOLDEN_WEEK_2026 = [date(2026, 10, d) for d in range(1, 8)]
_SPRING_FESTIVAL_2026 = [date(2026, 2, d) for d in range(15, 24)]  # 2/15 (Sun) .. 2/23 (Mon)
_GOLDEN_WEEK_2025 = [date(2025, 10, d) for d in range(1, 9)]
_MAKE_UP_2026 = [date(2026, m, d) for m, d in [(1, 4), (2, 14), (2, 28), (5, 9), (9, 20), (10, 10)]]


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 3, 7), False),  # Saturday 周六
        (date(2026, 3, 8), False),  # Sunday 周日
        (date(2026, 3, 9), True),  # Monday
        (date(2026, 9, 30), True),  # day before Golden Week
        *[(d, False) for d in _GOLDEN_WEEK_2026],  # 国庆 2026
        (date(2026, 10, 8), True),
        (date(2026, 10, 11), False),  # Sunday after the make-up Saturday
        (date(2026, 2, 13), True),
        *[(d, False) for d in _SPRING_FESTIVAL_2026],  # 春节 2026
        (date(2026, 2, 24), True),
        (date(2026, 1, 1), False),  # 元旦
        (date(2026, 1, 2), False),
        *[(d, True) for d in _MAKE_UP_2026],  # 调休上班 2026 (weekend days)
        (date(2025, 1, 26), True),  # Sunday, make-up 2025
        (date(2025, 2, 8), True),  # Saturday, make-up 2025
        *[(d, False) for d in _GOLDEN_WEEK_2025],  # 国庆+中秋 2025
        (date(2025, 9, 28), True),  # Sunday, make-up 2025
        (date(2025, 10, 11), True),  # Saturday, make-up 2025
        (date(2027, 1, 1), False),  # provisional: 元旦 by rule (a Friday)
        (date(2027, 1, 2), False),  # provisional: weekend
        (date(2027, 1, 4), True),  # provisional: weekday
        *[(date(2027, 2, d), False) for d in range(5, 11)],  # provisional: 春节 by rule, lunar
        (date(2027, 2, 11), True),
        *[(date(2027, 10, d), False) for d in range(1, 6)],  # provisional: 国庆 + weekend make-up rest
        (date(2027, 10, 6), True),
    ],
)
def test_is_working_day(day: date, working: bool) -> None:
    assert CAL.is_working_day(day) is working
    assert CAL.is_working_day(datetime.combine(day, time(10), tzinfo=SHANGHAI)) is working


def test_make_up_days_are_weekend_days() -> None:
    assert all(d.weekday() >= 5 for d in _MAKE_UP_2026)


def test_248_working_days_in_2026() -> None:
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    assert sum(CAL.is_working_day(d) for d in days) == 248
    # The cumulative table agrees: a whole year is 248 × 7.5 working hours.
    assert CAL.working_hours_between(dt(2026, 1, 1), dt(2027, 1, 1)) == pytest.approx(248 * 7.5)


# --------------------------------------------------------------------------------------------
# Working time 工作时间 and durations 时长
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (dt(2026, 3, 10, 8, 29, 59), False),
        (dt(2026, 3, 10, 8, 30), True),
        (dt(2026, 3, 10, 11, 59, 59), True),
        (dt(2026, 3, 10, 12, 0), False),  # lunch 午休
        (dt(2026, 3, 10, 13, 29), False),
        (dt(2026, 3, 10, 13, 30), True),
        (dt(2026, 3, 10, 17, 29), True),
        (dt(2026, 3, 10, 17, 30), False),
        (dt(2026, 3, 10, 22, 0), False),  # night
        (dt(2026, 3, 7, 10, 0), False),  # Saturday
        (dt(2026, 10, 10, 10, 0), True),  # make-up Saturday 调休上班
        (dt(2026, 10, 5, 10, 0), False),  # Golden Week Monday
        (datetime(2026, 3, 10, 2, 0, tzinfo=UTC), True),  # 10:00 in Shanghai
        (datetime(2026, 3, 10, 10, 0), True),  # naive → Shanghai
    ],
)
def test_is_working_time(t: datetime, expected: bool) -> None:
    assert CAL.is_working_time(t) is expected


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        pytest.param(dt(2026, 3, 10, 9), dt(2026, 3, 10, 10, 30), 1.5, id="same-morning"),
        pytest.param(dt(2026, 3, 10, 11), dt(2026, 3, 10, 14), 1.5, id="across-lunch"),
        pytest.param(dt(2026, 3, 10, 12, 30), dt(2026, 3, 10, 14, 30), 1.0, id="start-inside-lunch"),
        pytest.param(dt(2026, 3, 10, 11), dt(2026, 3, 10, 13), 1.0, id="end-inside-lunch"),
        pytest.param(dt(2026, 3, 10, 12, 10), dt(2026, 3, 10, 13, 20), 0.0, id="within-lunch"),
        pytest.param(dt(2026, 3, 10, 7), dt(2026, 3, 10, 19), 7.5, id="whole-day"),
        pytest.param(dt(2026, 3, 10, 17), dt(2026, 3, 11, 9), 1.0, id="overnight"),
        # Fri 17:00 → Mon 09:00: 17:00–17:30 + 08:30–09:00.
        pytest.param(dt(2026, 3, 13, 17), dt(2026, 3, 16, 9), 1.0, id="over-weekend"),
        pytest.param(dt(2026, 3, 14, 9), dt(2026, 3, 15, 18), 0.0, id="weekend-only"),
        pytest.param(dt(2026, 3, 9, 8, 30), dt(2026, 3, 16, 8, 30), 37.5, id="full-week"),
        # 9/30 0.5 h, 10/1–10/7 holidays, 10/8 7.5 h, 10/9 0.5 h.
        pytest.param(dt(2026, 9, 30, 17), dt(2026, 10, 9, 9), 8.5, id="golden-week-2026"),
        # Fri 10/9 0.5 h + make-up Sat 10/10 7.5 h + Mon 10/12 0.5 h.
        pytest.param(dt(2026, 10, 9, 17), dt(2026, 10, 12, 9), 8.5, id="make-up-saturday-10-10"),
        # Fri 2/13 0.5 h + make-up Sat 2/14 7.5 h + 2/15–2/23 Spring Festival + Tue 2/24 0.5 h.
        pytest.param(dt(2026, 2, 13, 17), dt(2026, 2, 24, 9), 8.5, id="spring-festival-2026"),
        pytest.param(dt(2026, 2, 28, 9), dt(2026, 2, 28, 10), 1.0, id="make-up-saturday-2-28"),
        pytest.param(dt(2026, 1, 2, 17), dt(2026, 1, 5, 9), 8.0, id="new-year-make-up-sunday"),
        pytest.param(dt(2025, 9, 30, 17), dt(2025, 10, 9, 9), 0.5 + 0.5, id="golden-week-2025"),
        pytest.param(dt(2025, 10, 10, 17), dt(2025, 10, 13, 9), 0.5 + 7.5 + 0.5, id="make-up-2025-10-11"),
        pytest.param(dt(2026, 3, 10, 10), dt(2026, 3, 10, 10), 0.0, id="empty"),
        pytest.param(dt(2026, 3, 11, 10), dt(2026, 3, 10, 10), 0.0, id="end-before-start"),
        pytest.param(
            datetime(2026, 3, 10, 1, 0, tzinfo=UTC), datetime(2026, 3, 10, 2, 30, tzinfo=UTC), 1.5, id="utc"
        ),
        pytest.param(datetime(2026, 3, 10, 9), dt(2026, 3, 10, 10, 30), 1.5, id="naive-mixed"),
        pytest.param(dt(2026, 3, 10, 9, 0, 30), dt(2026, 3, 10, 9, 1), 0.5 / 60, id="seconds"),
        # Provisional 暂定 2027: statutory holidays by rule and weekends (1/1 is a Friday, 元旦).
        pytest.param(dt(2026, 12, 31, 17), dt(2027, 1, 4, 9), 0.5 + 0.5, id="into-provisional-2027"),
        # 劳动节 5/1–2 fall on a weekend: the law's make-up rest days are 5/3–4.
        pytest.param(dt(2027, 5, 1, 9), dt(2027, 5, 5, 9), 0.5, id="provisional-2027-labour-day"),
    ],
)
def test_working_hours_between(start: datetime, end: datetime, hours: float) -> None:
    assert CAL.working_hours_between(start, end) == pytest.approx(hours, abs=1e-9)


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (dt(2026, 3, 10, 9), dt(2026, 3, 10, 10, 30), 1.5),
        (dt(2026, 3, 13, 17), dt(2026, 3, 16, 9), 64.0),
        (datetime(2026, 3, 10, 1, 0, tzinfo=UTC), dt(2026, 3, 10, 10), 1.0),
        (dt(2026, 3, 11), dt(2026, 3, 10), 0.0),
    ],
)
def test_natural_hours_between(start: datetime, end: datetime, hours: float) -> None:
    assert natural_hours_between(start, end) == pytest.approx(hours)


def test_far_years_grow_the_table_and_bad_years_raise() -> None:
    cal = WorkingCalendar()
    assert cal.working_hours_between(dt(1990, 3, 5, 8, 30), dt(1990, 3, 6, 8, 30)) == 7.5
    assert cal.working_hours_between(dt(2150, 3, 5, 8, 30), dt(2150, 3, 6, 8, 30)) == 7.5
    assert cal.working_hours_between(dt(2026, 3, 10, 9), dt(2026, 3, 10, 10, 30)) == 1.5
    with pytest.raises(ValueError, match="outside"):
        cal.working_hours_between(dt(1800, 1, 1), dt(2026, 1, 1))


# --------------------------------------------------------------------------------------------
# Adding working time 加工作时 / 工作日
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        (dt(2026, 3, 13, 17), 1.5, dt(2026, 3, 16, 9, 30)),  # over the weekend
        (dt(2026, 3, 10, 8, 30), 3.5, dt(2026, 3, 10, 12)),  # ends at the lunch break, not 13:30
        (dt(2026, 3, 10, 8, 30), 7.5, dt(2026, 3, 10, 17, 30)),
        (dt(2026, 3, 10, 11), 2, dt(2026, 3, 10, 14, 30)),  # across lunch
        (dt(2026, 3, 10, 12, 30), 1, dt(2026, 3, 10, 14, 30)),  # start inside lunch
        (dt(2026, 3, 10, 6), 1, dt(2026, 3, 10, 9, 30)),  # start before work
        (dt(2026, 3, 14, 10), 1, dt(2026, 3, 16, 9, 30)),  # start on Saturday
        (dt(2026, 9, 30, 17), 1, dt(2026, 10, 8, 9)),  # over Golden Week
        (dt(2026, 10, 9, 17), 1, dt(2026, 10, 10, 9)),  # onto make-up Saturday
        (dt(2026, 2, 14, 17), 1, dt(2026, 2, 24, 9)),  # over Spring Festival
        (dt(2026, 3, 10, 10), 0, dt(2026, 3, 10, 10)),
        (dt(2026, 3, 14, 10), 0, dt(2026, 3, 14, 10)),  # 0 h keeps a non-working start
        (datetime(2026, 3, 10, 2, 0, tzinfo=UTC), 1, dt(2026, 3, 10, 11)),
        (dt(2026, 12, 31, 17), 1, dt(2027, 1, 4, 9)),  # provisional 2027: 元旦 by rule
    ],
)
def test_add_working_hours(start: datetime, hours: float, due: datetime) -> None:
    got = CAL.add_working_hours(start, hours)
    assert got == due
    assert got.tzinfo is SHANGHAI


@pytest.mark.parametrize("hours", [-1.0, float("nan"), float("inf")])
def test_add_working_hours_rejects_bad_hours(hours: float) -> None:
    with pytest.raises(ValueError, match="hours"):
        CAL.add_working_hours(dt(2026, 3, 10, 10), hours)


def test_add_working_hours_far_beyond_table() -> None:
    cal = WorkingCalendar()
    due = cal.add_working_hours(dt(2026, 3, 10, 10), 7.5 * 250 * 50)  # ~50 years
    assert due.year > 2070
    assert cal.working_hours_between(dt(2026, 3, 10, 10), due) == pytest.approx(7.5 * 250 * 50)


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (dt(2026, 3, 10, 10), 1, dt(2026, 3, 11, 10)),
        (dt(2026, 3, 13, 10), 1, dt(2026, 3, 16, 10)),  # Fri → Mon
        (dt(2026, 3, 10, 10), 5, dt(2026, 3, 17, 10)),
        (dt(2026, 9, 30, 10), 1, dt(2026, 10, 8, 10)),  # Golden Week
        (dt(2026, 10, 9, 10), 1, dt(2026, 10, 10, 10)),  # make-up Saturday
        (dt(2026, 2, 13, 10), 1, dt(2026, 2, 14, 10)),  # make-up Saturday before Spring Festival
        (dt(2026, 2, 13, 10), 2, dt(2026, 2, 24, 10)),
        (dt(2026, 3, 14, 10), 0, dt(2026, 3, 16, 8, 30)),  # Saturday → next working start
        (dt(2026, 3, 14, 10), 1, dt(2026, 3, 17, 8, 30)),
        (dt(2026, 3, 13, 12, 15), 1, dt(2026, 3, 16, 13, 30)),  # lunch → 13:30, then +1 day
        (dt(2026, 3, 13, 7, 0), 1, dt(2026, 3, 16, 8, 30)),  # before work → 08:30
        (dt(2026, 3, 13, 18, 0), 1, dt(2026, 3, 17, 8, 30)),  # after work → Mon 08:30, +1
        (dt(2026, 3, 10, 10, 15, 30), 2, dt(2026, 3, 12, 10, 15, 30)),  # seconds kept
        (dt(2026, 12, 31, 10), 1, dt(2027, 1, 4, 10)),  # provisional 2027: 元旦 by rule
    ],
)
def test_add_working_days(start: datetime, days: int, due: datetime) -> None:
    got = CAL.add_working_days(start, days)
    assert got == due
    assert got.tzinfo is SHANGHAI


def test_add_working_days_rejects_negative() -> None:
    with pytest.raises(ValueError, match="days"):
        CAL.add_working_days(dt(2026, 3, 10, 10), -1)


# Inverse properties 互逆性质 (hypothesis).

_starts = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31, 23, 59, 59))


@settings(max_examples=300, deadline=None)
@given(start=_starts, hours=st.floats(min_value=0, max_value=600, allow_nan=False))
def test_add_working_hours_inverts_working_hours_between(start: datetime, hours: float) -> None:
    due = CAL.add_working_hours(start, hours)
    assert due >= start.replace(tzinfo=SHANGHAI)
    assert CAL.working_hours_between(start, due) == pytest.approx(hours, abs=1e-6)
    if hours > 1e-3:  # earliest such time: one second earlier is short of the hours
        assert CAL.working_hours_between(start, due - timedelta(seconds=1)) < hours


@settings(max_examples=300, deadline=None)
@given(start=_starts, days=st.integers(min_value=0, max_value=120))
def test_add_working_days_matches_working_hours(start: datetime, days: int) -> None:
    due = CAL.add_working_days(start, days)
    assert CAL.working_hours_between(start, due) == pytest.approx(days * CAL.hours_per_day, abs=1e-6)
    assert CAL.is_working_time(due)
    if CAL.is_working_time(start):
        assert due.time() == start.time()


@settings(max_examples=200, deadline=None)
@given(a=_starts, b=_starts, c=_starts)
def test_working_hours_are_additive(a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted([a, b, c])
    total = CAL.working_hours_between(a, c)
    assert total == pytest.approx(CAL.working_hours_between(a, b) + CAL.working_hours_between(b, c))
    assert total <= natural_hours_between(a, c) + 1e-9


# Brute-force oracle 暴力校验: minute stepping, independent of the cumulative table.


def _oracle_working_day(d: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        return d.weekday() < 5


def _oracle_minutes(start: datetime, end: datetime) -> int:
    periods = [(8 * 60 + 30, 12 * 60), (13 * 60 + 30, 17 * 60 + 30)]
    total = 0
    t = start
    day_cache: dict[date, bool] = {}
    while t < end:
        d = t.date()
        if d not in day_cache:
            day_cache[d] = _oracle_working_day(d)
        m = t.hour * 60 + t.minute
        if day_cache[d] and any(s <= m < e for s, e in periods):
            total += 1
        t += timedelta(minutes=1)
    return total


def test_fast_path_matches_minute_stepping_oracle() -> None:
    rng = random.Random(20260101)
    lo = datetime(2024, 12, 20)
    span_minutes = int((datetime(2027, 1, 20) - lo).total_seconds() // 60)
    for _ in range(200):
        start = lo + timedelta(minutes=rng.randrange(span_minutes))
        end = start + timedelta(minutes=rng.randrange(0, 6 * 24 * 60))
        expected = _oracle_minutes(start, end) / 60
        assert CAL.working_hours_between(start, end) == pytest.approx(expected, abs=1e-9), (start, end)


# --------------------------------------------------------------------------------------------
# Provisional years 暂定年份 and deadlines 截止时间
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "provisional"),
    [
        (date(2026, 6, 1), False),
        (date(2004, 1, 1), False),
        (date(2027, 1, 1), True),
        (date(2003, 12, 31), True),
        (dt(2026, 12, 31, 23, 59), False),
        (datetime(2026, 12, 31, 20, 0, tzinfo=UTC), True),  # 2027-01-01 04:00 in Shanghai
    ],
)
def test_is_provisional(value: date | datetime, provisional: bool) -> None:
    assert is_provisional(value) is provisional
    assert CAL.is_provisional(value) is provisional


def test_provisional_year_never_raises() -> None:
    start = dt(2030, 3, 1, 9)
    assert CAL.working_hours_between(start, dt(2030, 3, 4, 9)) == 7.5  # Fri 9:00 → Mon 9:00
    assert CAL.add_working_days(start, 1) == dt(2030, 3, 4, 9)
    assert CAL.is_working_day(date(2030, 3, 2)) is False
    assert CAL.is_working_day(date(2030, 10, 1)) is False  # 国庆 by rule


@pytest.mark.parametrize(
    ("start", "hours", "basis", "expected"),
    [
        (dt(2026, 3, 13, 17), 1.5, "working", Deadline(dt(2026, 3, 16, 9, 30), "working", False)),
        (dt(2026, 3, 13, 17), 2, "natural", Deadline(dt(2026, 3, 13, 19), "natural", False)),
        (dt(2026, 12, 31, 10), 16, "working", Deadline(dt(2027, 1, 5, 11), "working", True)),
        (dt(2026, 12, 31, 10), 16, "natural", Deadline(dt(2027, 1, 1, 2), "natural", False)),
        (dt(2027, 3, 1, 9), 1, "working", Deadline(dt(2027, 3, 1, 10), "working", True)),
    ],
)
def test_deadline(start: datetime, hours: float, basis: str, expected: Deadline) -> None:
    assert CAL.deadline(start, hours, basis) == expected  # type: ignore[arg-type]


def test_deadline_rejects_unknown_basis() -> None:
    with pytest.raises(ValueError, match="basis"):
        CAL.deadline(dt(2026, 3, 10, 10), 1, "calendar")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# County overrides 区县覆盖 and the override file 覆盖配置文件
# --------------------------------------------------------------------------------------------


def test_county_extra_holiday_from_repo_file() -> None:
    county = load_calendar(DEFAULT_OVERRIDES_PATH, county="330110")
    default = load_calendar(DEFAULT_OVERRIDES_PATH)
    assert county.is_working_day(date(2026, 12, 31)) is False
    assert default.is_working_day(date(2026, 12, 31)) is True
    assert county.working_hours_between(dt(2026, 12, 31, 8), dt(2026, 12, 31, 18)) == 0.0
    assert default.working_hours_between(dt(2026, 12, 31, 8), dt(2026, 12, 31, 18)) == 7.5
    # Unknown county → default rules.
    assert load_calendar(DEFAULT_OVERRIDES_PATH, county="999999").rules == default.rules


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 3, 10), False),  # county extra holiday 额外休息日
        (date(2026, 3, 14), True),  # county extra working Saturday 额外工作日
        (date(2026, 10, 2), False),  # national holiday untouched
        (date(2026, 3, 11), True),
    ],
)
def test_county_override_days(day: date, working: bool) -> None:
    config = CalendarConfig.model_validate(
        {
            "default": {"extra_holidays": ["2026-03-10"]},
            "counties": {"330110": {"extra_working_days": ["2026-03-14"]}},
        }
    )
    cal = WorkingCalendar(config, "330110")
    assert cal.is_working_day(day) is working


def test_county_working_hours_override_keeps_default_days() -> None:
    config = CalendarConfig.model_validate(
        {
            "default": {"extra_holidays": ["2026-03-10"]},
            "counties": {330111: {"working_hours": [["09:00", "12:00"], ["14:00", "18:00"]]}},
        }
    )
    cal = WorkingCalendar(config, "330111")
    assert cal.hours_per_day == 7.0
    assert cal.is_working_day(date(2026, 3, 10)) is False  # inherited from default
    assert cal.working_hours_between(dt(2026, 3, 11, 8, 30), dt(2026, 3, 11, 14, 30)) == 3.5
    assert cal.add_working_hours(dt(2026, 3, 9, 17), 1.5) == dt(2026, 3, 11, 9, 30)
    assert WorkingCalendar(config).hours_per_day == 7.5


_CONFLICT_YAML = """\
default: {extra_working_days: ["2026-03-10"]}
counties: {"330110": {extra_holidays: ["2026-03-10"]}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        pytest.param(
            "default: {working_hours: [[08:30, 12:00], [13:30, 17:30]]}\n",
            ["default.working_hours", "quoted"],
            id="unquoted-sexagesimal",
        ),
        pytest.param(
            'default: {working_hours: [["08:30", "12:30"], ["12:00", "17:30"]]}\n',
            ["default.working_hours", "overlap"],
            id="overlap",
        ),
        pytest.param(
            'default: {working_hours: [["08:30", "25:00"]]}\n', ["default.working_hours", "range"], id="range"
        ),
        pytest.param('default: {working_hours: [["9", "12:00"]]}\n', ["working_hours", "HH:MM"], id="format"),
        pytest.param("default: {working_hours: []}\n", ["working_hours", "at least one"], id="empty"),
        pytest.param(
            'counties: {"330110": {extra_holidays: ["2026-02-30"]}}\n',
            ["counties.330110.extra_holidays"],
            id="bad-date",
        ),
        pytest.param('counties: {"3301": {}}\n', ["counties", "6-digit"], id="county-key"),
        pytest.param(
            'counties: {"330110": {holidays: []}}\n', ["counties.330110.holidays"], id="unknown-field"
        ),
        pytest.param(
            'default: {extra_holidays: ["2026-03-10"], extra_working_days: ["2026-03-10"]}\n',
            ["both list 2026-03-10"],
            id="day-in-both",
        ),
        pytest.param(
            _CONFLICT_YAML,
            ["counties.330110", "both list 2026-03-10"],
            id="county-conflicts-with-default",
        ),
        pytest.param("default: [\n", ["not valid YAML"], id="yaml-syntax"),
        pytest.param(
            'notices: {2027: {rest_days: ["2026-12-31"]}}\n',
            ["notices.2027", "2026-12-31 is not in 2027"],
            id="notice-year",
        ),
        pytest.param(
            'notices: {2027: {rest_days: ["2027-02-06"], working_days: ["2027-02-06"]}}\n',
            ["notices.2027", "both a rest day and a working day"],
            id="notice-day-in-both",
        ),
        pytest.param("notices: {2027: {working_days: []}}\n", ["notices.2027.rest_days"], id="notice-no-rest-days"),
    ],
)
def test_invalid_override_file_names_the_field(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(CalendarConfigError) as info:
        load_calendar(path)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert str(path.resolve()) in str(info.value)


def test_missing_override_file(tmp_path: Path) -> None:
    with pytest.raises(CalendarConfigError, match="cannot read"):
        load_calendar(tmp_path / "nope.yaml")


def test_empty_override_file_gives_defaults(tmp_path: Path) -> None:
    cal = load_calendar(_write(tmp_path, "# nothing\n"))
    assert cal.rules == CalendarRules()
    assert cal.hours_per_day == 7.5


def test_load_calendar_is_cached_per_path_and_county(tmp_path: Path) -> None:
    path = _write(tmp_path, 'counties: {"330110": {extra_holidays: ["2026-03-10"]}}\n')
    assert load_calendar(path) is load_calendar(path)
    assert load_calendar(path, "330110") is load_calendar(path, "330110")
    assert load_calendar(path) is not load_calendar(path, "330110")


def test_env_var_selects_override_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, 'default: {extra_holidays: ["2026-03-10"]}\n')
    monkeypatch.setenv(OVERRIDES_ENV, str(path))
    assert load_calendar() is load_calendar(path)
    assert load_calendar().is_working_day(date(2026, 3, 10)) is False


def test_module_level_functions_use_default_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OVERRIDES_ENV, raising=False)
    default_calendar.cache_clear()
    assert default_calendar() is load_calendar(DEFAULT_OVERRIDES_PATH)
    assert default_calendar() is default_calendar()
    assert working_hours_between(dt(2026, 3, 13, 17), dt(2026, 3, 16, 9)) == 1.0
    assert add_working_hours(dt(2026, 3, 13, 17), 1.5) == dt(2026, 3, 16, 9, 30)
    assert add_working_days(dt(2026, 9, 30, 10), 1) == dt(2026, 10, 8, 10)
    assert is_working_time(dt(2026, 10, 10, 10)) is True
    assert is_working_day(date(2026, 10, 10)) is True
    assert deadline(dt(2026, 3, 13, 17), 2, "natural").due_at == dt(2026, 3, 13, 19)


def test_table_agrees_with_library_for_every_known_day() -> None:
    day, last = date(2004, 1, 1), date(2026, 12, 31)
    while day <= last:
        assert CAL.is_working_day(day) is chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


# --------------------------------------------------------------------------------------------
# The State Council's notice 放假安排通知 loaded for a year the library does not know
# --------------------------------------------------------------------------------------------

#: A notice for 2027 as an operator would load it (dates illustrative: 春节 2/6–2/13, make-up
#: working days Sunday 1/31 and Saturday 2/20; 元旦 1/1–1/3).
_NOTICE_2027 = """\
notices:
  2027:
    document: 国办发明电〔2026〕X号
    rest_days: ["2027-01-01", "2027-01-02", "2027-01-03",
                "2027-02-06", "2027-02-07", "2027-02-08", "2027-02-09",
                "2027-02-10", "2027-02-11", "2027-02-12", "2027-02-13"]
    working_days: ["2027-01-31", "2027-02-20"]
"""


def test_a_year_without_notice_counts_statutory_holidays_and_is_provisional() -> None:
    assert CAL.national.source(2026) == "chinesecalendar"
    assert CAL.national.source(2027) == "statutory"
    assert CAL.is_provisional(date(2027, 1, 1)) is True
    assert CAL.is_working_day(date(2027, 1, 1)) is False  # 元旦, not a plain Friday
    assert CAL.is_working_day(date(2027, 2, 11)) is True  # the notice's bridge days are not known yet


def test_a_loaded_notice_makes_the_year_final(tmp_path: Path) -> None:
    cal = load_calendar(_write(tmp_path, _NOTICE_2027))
    assert cal.national.source(2027) == "notice"
    assert cal.is_provisional(date(2027, 6, 1)) is False
    assert cal.spans_provisional(dt(2026, 12, 31, 10), dt(2027, 3, 1, 10)) is False
    assert cal.is_working_day(date(2027, 2, 11)) is False  # a rest day the notice adds
    assert cal.is_working_day(date(2027, 1, 31)) is True  # make-up Sunday 调休上班
    assert cal.is_working_day(date(2027, 1, 4)) is True
    # Friday 2/5 17:00 + 1 h: half an hour that day, the rest after the holiday on Monday 2/15.
    assert cal.add_working_hours(dt(2027, 2, 5, 17), 1) == dt(2027, 2, 15, 9)
    assert cal.add_working_days(dt(2027, 2, 19, 10), 1) == dt(2027, 2, 20, 10)  # onto make-up Saturday
    assert cal.known_years(2026, 2028) == (2026, 2027)
    # The default calendar (no notice) still treats 2027 as provisional.
    assert CAL.known_years(2026, 2028) == (2026,)


# --------------------------------------------------------------------------------------------
# Deadlines in working days 工作日时限 (12345 一般件: 5 working days)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "due"),
    [
        # Tue 10:00 → Wed, Thu, Fri, Mon, Tue: the 5th working day at the same clock time.
        (dt(2026, 3, 10, 10), dt(2026, 3, 17, 10)),
        # Fri 18:00, after work → Mon..Fri; the 5th working day's end of work.
        (dt(2026, 3, 13, 18), dt(2026, 3, 20, 17, 30)),
        # Saturday (a day off) → Mon..Fri, end of work.
        (dt(2026, 3, 14, 10), dt(2026, 3, 20, 17, 30)),
        # Fri 07:00, before work: Friday counts in full → the 5th working day after it at 07:00.
        (dt(2026, 3, 13, 7), dt(2026, 3, 20, 7)),
        # Wed 9-30 → 10-1..7 National Day; 10-8 (1), 10-9 (2), make-up Sat 10-10 (3), 10-12 (4), 10-13 (5).
        (dt(2026, 9, 30, 10), dt(2026, 10, 13, 10)),
        # Mon 12-28 → 29 (1), 30 (2), 31 (3); 元旦 2027 by rule and the weekend; 1-4 (4), 1-5 (5).
        (dt(2026, 12, 28, 10), dt(2027, 1, 5, 10)),
    ],
)
def test_deadline_in_working_days(start: datetime, due: datetime) -> None:
    deadline = CAL.deadline_in_working_days(start, 5)
    assert deadline.due_at == due
    assert deadline.basis == "working"
    assert deadline.provisional is (due.year == 2027)


def test_deadline_in_working_days_needs_one_day_at_least() -> None:
    with pytest.raises(ValueError, match="days"):
        CAL.deadline_in_working_days(dt(2026, 3, 10, 10), 0)
