"""Working-time calendar 工作日历 shared by dispatch deadlines 处置时限 and metrics durations 时长指标.

Working days 工作日 are the national calendar's (:mod:`shared.national_calendar`: the State
Council's notice 放假安排通知 where loaded or known to ``chinesecalendar``, else the statutory
holidays by rule and weekends), then adjusted by the county override file 区县覆盖配置
``deploy/calendar/overrides.yaml`` (extra holidays 额外休息日, extra working days 额外工作日,
working hours 工作时间 per county; default 08:30–12:00 and 13:30–17:30 = 7.5 h a day; the file
is modelled in :mod:`shared.calendar_config`).

A year without a published notice is *provisional* 暂定: its statutory holidays count, the
调休 swaps are not known yet. Nothing raises; callers store the flag so the figure can be
recomputed once the notice is loaded.

Time zone 时区: datetimes may be aware (any zone) or naive; naive ones are read as
Asia/Shanghai wall time. Every datetime returned is aware, in Asia/Shanghai.

Speed: each calendar keeps, for a range of years built lazily, the cumulative working minutes
累计工作分钟 at the start of every day. A working-time position is then O(1) (table lookup +
within-day offset), a duration is ``pos(end) - pos(start)``, and adding working hours is a
bisect on the cumulative table. No call steps through minutes or loops over days.

The module does no I/O except reading the override file once per (path, county).
"""

from __future__ import annotations

import math
import os
import threading
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import cache, lru_cache
from pathlib import Path
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.calendar_config import (
    DEFAULT_WORKING_HOURS,
    MAX_YEAR,
    MIN_YEAR,
    OVERRIDES_ENV,
    CalendarConfig,
    CalendarConfigError,
    CalendarRules,
    HolidayNotice,
    read_config,
)
from shared.national_calendar import NationalCalendar

__all__ = [
    "DEFAULT_OVERRIDES_PATH",
    "DEFAULT_WORKING_HOURS",
    "MAX_YEAR",
    "MIN_YEAR",
    "OVERRIDES_ENV",
    "SHANGHAI",
    "Basis",
    "CalendarConfig",
    "CalendarConfigError",
    "CalendarRules",
    "Deadline",
    "HolidayNotice",
    "WorkingCalendar",
    "add_working_days",
    "add_working_hours",
    "deadline",
    "default_calendar",
    "is_provisional",
    "is_working_day",
    "is_working_time",
    "load_calendar",
    "natural_hours_between",
    "reload_calendar",
    "working_hours_between",
]


def _shanghai_tz() -> tzinfo:
    """Asia/Shanghai from the tz database; a fixed UTC+8 if the database is missing.

    China has used UTC+8 without daylight saving since 1991, so the fallback is exact for
    every date this platform handles.
    """
    try:
        return ZoneInfo("Asia/Shanghai")
    except ZoneInfoNotFoundError:  # pragma: no cover - depends on the host's tz database
        return timezone(timedelta(hours=8), "Asia/Shanghai")


#: China Standard Time 北京时间; every returned datetime carries this tzinfo.
SHANGHAI: Final[tzinfo] = _shanghai_tz()
#: Repository root, located from this file (``shared/calendar.py`` → repo root).
_REPO_ROOT: Final = Path(__file__).resolve().parents[1]
#: Default county override file 区县覆盖配置文件.
DEFAULT_OVERRIDES_PATH: Final = _REPO_ROOT / "deploy" / "calendar" / "overrides.yaml"

#: Time basis 计时口径: working time 工作时 or natural time 自然时.
Basis = Literal["working", "natural"]

_INITIAL_YEARS: Final = (2000, 2035)  # first table built; grows on demand
_GROW_PAD_YEARS: Final = 5



def _wall(t: datetime) -> datetime:
    """A datetime whose fields are Asia/Shanghai wall time 北京时间 (naive input kept as is)."""
    tz = t.tzinfo
    if tz is None or tz is SHANGHAI:
        return t
    return t.astimezone(SHANGHAI)


def _aware(t: datetime) -> datetime:
    """The same instant, aware, in Asia/Shanghai (naive read as Asia/Shanghai)."""
    tz = t.tzinfo
    if tz is None:
        return t.replace(tzinfo=SHANGHAI)
    if tz is SHANGHAI:
        return t
    return t.astimezone(SHANGHAI)


def _as_date(d: date | datetime) -> date:
    if isinstance(d, datetime):
        return _wall(d).date()
    return d


def natural_hours_between(start: datetime, end: datetime) -> float:
    """Natural hours 自然时 from ``start`` to ``end``; 0.0 when ``end <= start``."""
    seconds = (_aware(end) - _aware(start)).total_seconds()
    return seconds / 3600.0 if seconds > 0 else 0.0


# --------------------------------------------------------------------------------------------
# Working calendar 工作日历
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deadline:
    """A due time 截止时间 with its time basis 计时口径 and whether it is provisional 暂定."""

    due_at: datetime
    basis: Basis
    provisional: bool


@dataclass(frozen=True, slots=True)
class _Table:
    """Per-day table for years ``first_year..last_year``.

    ``working[i]``: 1 if day ``first + i`` is a working day 工作日.
    ``cum[i]``: working minutes 累计工作分钟 before day ``first + i`` (``len == days + 1``).
    """

    first_year: int
    last_year: int
    first: int
    days: int
    working: bytes
    cum: list[int]


class WorkingCalendar:
    """Working-time calendar 工作日历 of one county 区县 (or the default rules).

    Built from a :class:`CalendarConfig` and an optional county code; immutable once built,
    safe to share across threads (the per-day table grows under a lock, readers never block).
    """

    def __init__(self, config: CalendarConfig | None = None, county: str | None = None) -> None:
        self.config: Final = config if config is not None else CalendarConfig()
        self.county: Final = county
        self.rules: Final = self.config.rules_for(county)
        self.national: Final = NationalCalendar(self.config.national_notices())
        periods = self.rules.periods_minutes
        self._periods: tuple[tuple[int, int], ...] = periods
        self._day_minutes: int = self.rules.minutes_per_day
        # Per minute of the day (0..1439): working minutes before it, and 1 if it is working.
        before = [0] * 1440
        is_open = [0] * 1440
        acc = 0
        for minute in range(1440):
            before[minute] = acc
            if any(s <= minute < e for s, e in periods):
                is_open[minute] = 1
                acc += 1
        self._before: list[int] = before
        self._open: list[int] = is_open
        self._lock = threading.Lock()
        self._table: _Table | None = None

    def __repr__(self) -> str:
        return f"WorkingCalendar(county={self.county!r}, working_hours={self.rules.working_hours!r})"

    # ---- properties -----------------------------------------------------------------------

    @property
    def hours_per_day(self) -> float:
        """Working hours in one working day 每日工作时长 (default 7.5)."""
        return self._day_minutes / 60.0

    # ---- per-day table ----------------------------------------------------------------------

    def _classify(self, d: date) -> bool:
        """Working day 工作日: county extra holiday → no; county extra working day → yes; else national."""
        if d in self.rules.extra_holidays:
            return False
        if d in self.rules.extra_working_days:
            return True
        return self.national.is_working_day(d)

    def _build(self, first_year: int, last_year: int) -> _Table:
        first = date(first_year, 1, 1).toordinal()
        days = date(last_year, 12, 31).toordinal() - first + 1
        working = bytearray(days)
        cum = [0] * (days + 1)
        w = self._day_minutes
        acc = 0
        for i in range(days):
            cum[i] = acc
            if self._classify(date.fromordinal(first + i)):
                working[i] = 1
                acc += w
        cum[days] = acc
        return _Table(first_year, last_year, first, days, bytes(working), cum)

    def _table_for(self, first_year: int, last_year: int) -> _Table:
        """A table covering ``first_year..last_year`` (grown and swapped atomically if needed)."""
        if first_year < MIN_YEAR or last_year > MAX_YEAR:
            raise ValueError(
                f"year {first_year if first_year < MIN_YEAR else last_year} is outside the "
                f"calendar's range {MIN_YEAR}–{MAX_YEAR}"
            )
        tab = self._table
        if tab is not None and tab.first_year <= first_year and last_year <= tab.last_year:
            return tab
        with self._lock:
            tab = self._table
            if tab is not None and tab.first_year <= first_year and last_year <= tab.last_year:
                return tab
            if tab is None:
                lo, hi = _INITIAL_YEARS
            else:
                lo, hi = tab.first_year, tab.last_year
            if first_year < lo:
                lo = first_year - _GROW_PAD_YEARS
            if last_year > hi:
                hi = last_year + _GROW_PAD_YEARS
            tab = self._build(max(lo, MIN_YEAR), min(hi, MAX_YEAR))
            self._table = tab
            return tab

    def _table_covering(self, a: datetime, b: datetime) -> _Table:
        """Table covering the wall dates of ``a`` and ``b`` (fast path: no lock)."""
        tab = self._table
        ya, yb = a.year, b.year
        if ya > yb:
            ya, yb = yb, ya
        if tab is not None and tab.first_year <= ya and yb <= tab.last_year:
            return tab
        return self._table_for(ya, yb)

    def _position(self, tab: _Table, w: datetime) -> float:
        """Working minutes from the table start to wall time ``w`` (non-decreasing in ``w``)."""
        i = w.toordinal() - tab.first
        if tab.working[i]:
            m = w.hour * 60 + w.minute
            return tab.cum[i] + self._before[m] + self._open[m] * (w.second * 1e6 + w.microsecond) / 6e7
        return float(tab.cum[i])

    def _at(self, tab: _Table, index: int, minute: float) -> datetime:
        """Aware Asia/Shanghai datetime at ``minute`` after midnight of table day ``index``."""
        d = date.fromordinal(tab.first + index)
        return datetime(d.year, d.month, d.day, tzinfo=SHANGHAI) + timedelta(minutes=minute)

    # ---- queries ------------------------------------------------------------------------------

    def is_working_day(self, d: date | datetime) -> bool:
        """True on a working day 工作日 (调休上班 make-up days included, holidays 节假日 excluded)."""
        return self._classify(_as_date(d))

    def is_working_time(self, t: datetime) -> bool:
        """True inside a working period 工作时段 of a working day (periods are [start, end))."""
        w = _wall(t)
        return bool(self._open[w.hour * 60 + w.minute]) and self._classify(w.date())

    def is_provisional(self, d: date | datetime) -> bool:
        """True while the (Asia/Shanghai) year has no published holiday notice 暂定.

        Such a year counts the statutory holidays by rule and weekends; see
        :mod:`shared.national_calendar`.
        """
        return self.national.is_provisional(_as_date(d).year)

    def spans_provisional(self, start: datetime, end: datetime) -> bool:
        """True when any year from ``start`` to ``end`` is provisional 暂定 (flag for stored figures)."""
        a, b = _wall(start).year, _wall(end).year
        return any(self.national.is_provisional(y) for y in range(min(a, b), max(a, b) + 1))

    def known_years(self, first: int, last: int) -> tuple[int, ...]:
        """Years of ``first..last`` whose holiday notice is published 已公布年份 (not provisional)."""
        return tuple(y for y in range(first, last + 1) if not self.national.is_provisional(y))

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Working hours 工作时 from ``start`` to ``end``: O(1); 0.0 when ``end <= start``.

        Nights 夜间, the lunch break 午休, weekends 周末 and holidays 节假日 do not count; make-up
        days 调休上班 do.
        """
        # Hot path (metrics compute millions of these): _wall and _position inlined.
        tz = start.tzinfo
        ws = start if tz is None or tz is SHANGHAI else start.astimezone(SHANGHAI)
        tz = end.tzinfo
        we = end if tz is None or tz is SHANGHAI else end.astimezone(SHANGHAI)
        tab = self._table
        if tab is None:
            tab = self._table_covering(ws, we)
        i = ws.toordinal() - tab.first
        j = we.toordinal() - tab.first
        if not (0 <= i < tab.days and 0 <= j < tab.days):
            tab = self._table_covering(ws, we)
            i = ws.toordinal() - tab.first
            j = we.toordinal() - tab.first
        cum, working, before, is_open = tab.cum, tab.working, self._before, self._open
        p_start: float = cum[i]
        if working[i]:
            m = ws.hour * 60 + ws.minute
            p_start += before[m] + is_open[m] * (ws.second * 1e6 + ws.microsecond) / 6e7
        p_end: float = cum[j]
        if working[j]:
            m = we.hour * 60 + we.minute
            p_end += before[m] + is_open[m] * (we.second * 1e6 + we.microsecond) / 6e7
        minutes = p_end - p_start
        return minutes / 60.0 if minutes > 0 else 0.0

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The earliest time at which ``hours`` working hours 工作时 have passed since ``start``.

        A due time landing exactly on the end of a period stays there (e.g. 12:00, 17:30) rather
        than moving to the next period's start. ``hours`` must be finite and >= 0; 0 → ``start``.
        """
        if not math.isfinite(hours) or hours < 0:
            raise ValueError(f"hours must be a finite number >= 0, got {hours!r}")
        w = _wall(start)
        tab = self._table_covering(w, w)
        origin = self._position(tab, w)
        target = origin + hours * 60.0
        while target > tab.cum[-1]:  # beyond the table: grow it (positions shift with its start)
            shortfall_days = (target - tab.cum[-1]) / self._day_minutes
            tab = self._table_for(tab.first_year, tab.last_year + int(shortfall_days / 200) + 1)
            origin = self._position(tab, w)
            target = origin + hours * 60.0
        if target <= origin:  # 0 h, or too small to move the float position
            return _aware(start)
        # Last day whose cumulative start is below target: a working day holding the due time.
        index = bisect_left(tab.cum, target) - 1
        rest = target - tab.cum[index]
        minute = float(self._periods[-1][1])
        for s, e in self._periods:
            if rest <= e - s:
                minute = s + rest
                break
            rest -= e - s
        return max(self._at(tab, index, minute), _aware(start))  # guard microsecond rounding

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The same clock time ``days`` working days 工作日 later.

        If ``start`` is outside working time 非工作时间 it first moves to the next working start
        (next period today, else the first period of the next working day). ``days`` >= 0.
        """
        if days < 0:
            raise ValueError(f"days must be >= 0, got {days!r}")
        w = _wall(start)
        tab = self._table_covering(w, w)
        while True:
            i = w.toordinal() - tab.first
            clock: time | None = None
            if tab.working[i]:
                m = w.hour * 60 + w.minute + (w.second + w.microsecond / 1e6) / 60.0
                for s, e in self._periods:
                    if s <= m < e:
                        clock = w.time()
                        break
                    if m < s:
                        clock = time(s // 60, s % 60)
                        break
            if clock is not None:
                base = tab.cum[i]
            else:  # next working day's first period
                base = tab.cum[i + 1]
                s0 = self._periods[0][0]
                clock = time(s0 // 60, s0 % 60)
            goal = base + days * self._day_minutes
            if goal < tab.cum[-1]:
                break
            tab = self._table_for(tab.first_year, tab.last_year + days // 200 + 1)
        # The working day whose cumulative start equals goal is the last day with cum <= goal.
        index = bisect_right(tab.cum, goal) - 1
        d = date.fromordinal(tab.first + index)
        return datetime.combine(d, clock, tzinfo=SHANGHAI)

    def deadline_in_working_days(self, start: datetime, days: int) -> Deadline:
        """A deadline of ``days`` working days 工作日时限 (12345 一般件: 5 working days).

        It ends at ``start``'s clock time on the ``days``-th working day after ``start``'s day, or
        at that day's end of work when ``start`` came after the day's working hours or on a day
        off. 第 N 个工作日的同一时刻；下班后或休息日开始的，为第 N 个工作日下班时。
        """
        if days < 1:
            raise ValueError(f"days must be >= 1, got {days!r}")
        w = _wall(start)
        tab = self._table_covering(w, w)
        end_of_work = self._periods[-1][1]
        while True:
            i = w.toordinal() - tab.first
            goal = tab.cum[i + 1] + (days - 1) * self._day_minutes  # minutes before the Nth working day
            if goal + self._day_minutes <= tab.cum[-1]:
                break
            tab = self._table_for(tab.first_year, tab.last_year + days // 200 + 1)
        minute = w.hour * 60 + w.minute + (w.second + w.microsecond / 1e6) / 60.0
        same_clock = bool(tab.working[i]) and minute <= end_of_work
        day = date.fromordinal(tab.first + bisect_right(tab.cum, goal) - 1)
        if same_clock:
            due = datetime.combine(day, w.time(), tzinfo=SHANGHAI)
        else:
            due = datetime.combine(day, time(0), tzinfo=SHANGHAI) + timedelta(minutes=end_of_work)
        return Deadline(due, "working", self.spans_provisional(start, due))

    def deadline(self, start: datetime, hours: float, basis: Basis) -> Deadline:
        """Due time 截止时间 ``hours`` after ``start`` in working time 工作时 or natural time 自然时.

        Working-time deadlines are provisional 暂定 when any year they span is provisional.
        """
        if basis == "natural":
            if not math.isfinite(hours) or hours < 0:
                raise ValueError(f"hours must be a finite number >= 0, got {hours!r}")
            return Deadline(_aware(start) + timedelta(hours=hours), "natural", False)
        if basis != "working":
            raise ValueError(f"basis must be 'working' or 'natural', got {basis!r}")
        due = self.add_working_hours(start, hours)
        return Deadline(due, "working", self.spans_provisional(start, due))


# --------------------------------------------------------------------------------------------
# Loading 加载 and module-level convenience functions 便捷函数 (default calendar)
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _load_cached(path: Path, county: str | None) -> WorkingCalendar:
    return WorkingCalendar(read_config(path), county)


def load_calendar(path: Path | None = None, county: str | None = None) -> WorkingCalendar:
    """The calendar for ``county`` from the override file, cached per (path, county) 按路径与区县缓存.

    ``path`` None → env ``CALENDAR_OVERRIDES``, else ``deploy/calendar/overrides.yaml`` of this
    repository. A county absent from the file gets the default rules.
    Raises :class:`CalendarConfigError` naming the file and the offending field.
    """
    if path is None:
        env = os.environ.get(OVERRIDES_ENV)
        path = Path(env) if env else DEFAULT_OVERRIDES_PATH
    return _load_cached(Path(os.path.abspath(path)), county)


def reload_calendar(path: Path | None = None, county: str | None = None) -> WorkingCalendar:
    """:func:`load_calendar` reading the override file again (an operator loaded a holiday notice).

    Forgets every cached calendar, so later :func:`load_calendar` calls read the new file too.
    重新读取覆盖配置（例如载入了放假通知）；清除全部已缓存日历。"""
    _load_cached.cache_clear()
    default_calendar.cache_clear()
    return load_calendar(path, county)


@cache
def default_calendar() -> WorkingCalendar:
    """The default calendar 默认日历 (no county), loaded lazily on first use, then kept.

    ``CALENDAR_OVERRIDES`` is read at that first use; ``default_calendar.cache_clear()`` forgets it.
    """
    return load_calendar()


def working_hours_between(start: datetime, end: datetime) -> float:
    """Working hours 工作时 between two times on the default calendar; 0.0 when ``end <= start``."""
    return default_calendar().working_hours_between(start, end)


def add_working_hours(start: datetime, hours: float) -> datetime:
    """``start`` plus ``hours`` working hours 工作时 on the default calendar."""
    return default_calendar().add_working_hours(start, hours)


def add_working_days(start: datetime, days: int) -> datetime:
    """Same clock time ``days`` working days 工作日 later on the default calendar."""
    return default_calendar().add_working_days(start, days)


def is_working_time(t: datetime) -> bool:
    """True inside working time 工作时间 on the default calendar."""
    return default_calendar().is_working_time(t)


def is_working_day(d: date | datetime) -> bool:
    """True on a working day 工作日 on the default calendar."""
    return default_calendar().is_working_day(d)


def is_provisional(d: date | datetime) -> bool:
    """True while the year has no published holiday notice 暂定, on the default calendar."""
    return default_calendar().is_provisional(d)


def deadline(start: datetime, hours: float, basis: Basis) -> Deadline:
    """Due time 截止时间 on the default calendar, in working 工作时 or natural 自然时 hours."""
    return default_calendar().deadline(start, hours, basis)
