"""Working-time calendar 工作日历 shared by dispatch deadlines 处置时限 and metrics durations 时长指标.

Working days 工作日 are weekdays minus statutory holidays 法定节假日 plus make-up working
days 调休上班, taken from the maintained library ``chinesecalendar`` (import name
``chinese_calendar``), then adjusted by the county override file 区县覆盖配置
``deploy/calendar/overrides.yaml`` (extra holidays 额外休息日, extra working days 额外工作日,
working hours 工作时间 per county; default 08:30–12:00 and 13:30–17:30 = 7.5 h a day).

A year the library does not know (not yet published by the State Council 国务院办公厅, or
before 2004) falls back to weekdays and is marked *provisional* 暂定: nothing raises, and
callers store the flag so the figure can be recomputed once the calendar is published.

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
import re
import threading
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

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
#: Environment variable overriding the override-file path 覆盖配置路径.
OVERRIDES_ENV: Final = "CALENDAR_OVERRIDES"
#: Repository root, located from this file (``shared/calendar.py`` → repo root).
_REPO_ROOT: Final = Path(__file__).resolve().parents[1]
#: Default county override file 区县覆盖配置文件.
DEFAULT_OVERRIDES_PATH: Final = _REPO_ROOT / "deploy" / "calendar" / "overrides.yaml"
#: Default working hours 默认工作时间: 08:30–12:00 and 13:30–17:30 (7.5 h).
DEFAULT_WORKING_HOURS: Final[tuple[tuple[str, str], ...]] = (("08:30", "12:00"), ("13:30", "17:30"))
#: Years a calendar can compute; outside this an input is treated as bad data (ValueError).
MIN_YEAR: Final = 1900
MAX_YEAR: Final = 2200

#: Time basis 计时口径: working time 工作时 or natural time 自然时.
Basis = Literal["working", "natural"]

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")
_COUNTY_CODE = re.compile(r"^\d{6}$")
_INITIAL_YEARS: Final = (2000, 2035)  # first table built; grows on demand
_GROW_PAD_YEARS: Final = 5


# --------------------------------------------------------------------------------------------
# Configuration 配置 (validated with pydantic)
# --------------------------------------------------------------------------------------------


class CalendarConfigError(ValueError):
    """The override file 覆盖配置文件 is missing, unreadable or invalid; the message names the field."""


def _parse_hhmm(value: str) -> int:
    """``"HH:MM"`` → minutes after midnight (``"24:00"`` allowed as an end)."""
    m = _HHMM.match(value)
    if m is None:
        raise ValueError(f"time {value!r} is not HH:MM")
    hh, mm = int(m.group(1)), int(m.group(2))
    if mm > 59 or hh > 24 or (hh == 24 and mm != 0):
        raise ValueError(f"time {value!r} is out of range 00:00–24:00")
    return hh * 60 + mm


def _time_to_text(value: Any) -> Any:
    """Normalise one time of a working period before validation; reject YAML base-60 ints."""
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, bool) or isinstance(value, int | float):
        raise ValueError(
            f"time {value!r} is a number; write working-hour times as quoted strings, "
            'e.g. "13:30" (unquoted YAML reads 13:30 as the base-60 number 810)'
        )
    if isinstance(value, str):
        m = _HHMM.match(value.strip())
        if m is not None:
            return f"{int(m.group(1)):02d}:{m.group(2)}"
        return value.strip()
    return value


class CalendarRules(BaseModel):
    """Calendar rules of one county 区县日历规则: working hours 工作时间 and local day overrides.

    ``working_hours``: ascending, non-overlapping ``("HH:MM", "HH:MM")`` periods 工作时段.
    ``extra_holidays``: local closures 额外休息日 (beat the national calendar).
    ``extra_working_days``: local make-up days 额外工作日 (beat the national calendar).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    working_hours: tuple[tuple[str, str], ...] = DEFAULT_WORKING_HOURS
    extra_holidays: frozenset[date] = frozenset()
    extra_working_days: frozenset[date] = frozenset()

    @field_validator("working_hours", mode="before")
    @classmethod
    def _normalise_times(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [
                [_time_to_text(t) for t in period] if isinstance(period, list | tuple) else period for period in value
            ]
        return value

    @field_validator("working_hours")
    @classmethod
    def _check_periods(cls, value: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        if not value:
            raise ValueError("at least one working period is required")
        previous_end = -1
        for start_text, end_text in value:
            start, end = _parse_hhmm(start_text), _parse_hhmm(end_text)
            if start >= 24 * 60:
                raise ValueError(f"period start {start_text!r} must be before 24:00")
            if end <= start:
                raise ValueError(f"period {start_text}–{end_text} ends before it starts")
            if start < previous_end:
                raise ValueError(
                    f"period {start_text}–{end_text} overlaps or precedes the previous one; "
                    "list periods in ascending order without overlap"
                )
            previous_end = end
        return value

    @model_validator(mode="after")
    def _check_days_disjoint(self) -> CalendarRules:
        both = self.extra_holidays & self.extra_working_days
        if both:
            days = ", ".join(d.isoformat() for d in sorted(both))
            raise ValueError(f"extra_holidays and extra_working_days both list {days}")
        return self

    @property
    def periods_minutes(self) -> tuple[tuple[int, int], ...]:
        """Working periods as (start, end) minutes after midnight 工作时段（分钟）."""
        return tuple((_parse_hhmm(s), _parse_hhmm(e)) for s, e in self.working_hours)

    @property
    def minutes_per_day(self) -> int:
        """Working minutes in one working day 每个工作日的工作分钟数 (default 450)."""
        return sum(e - s for s, e in self.periods_minutes)


class CalendarConfig(BaseModel):
    """The whole override file 覆盖配置文件: ``default`` rules and per-county 区县 overrides.

    Under ``counties`` (keyed by the 6-digit county division code 区县区划代码) each field that is
    present replaces the default's field of the same name; absent fields keep the default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: CalendarRules = CalendarRules()
    counties: dict[str, CalendarRules] = {}

    @field_validator("counties", mode="before")
    @classmethod
    def _county_keys(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, rules in value.items():
                code = str(key).strip()
                if not _COUNTY_CODE.match(code):
                    raise ValueError(f"county key {key!r} is not a 6-digit county division code")
                out[code] = {} if rules is None else rules
            return out
        return value

    @model_validator(mode="after")
    def _check_merged(self) -> CalendarConfig:
        for code in self.counties:
            try:
                self.rules_for(code)
            except ValidationError as exc:
                raise ValueError(f"counties.{code} conflicts with default: {_describe(exc)}") from exc
        return self

    def rules_for(self, county: str | None) -> CalendarRules:
        """Effective rules of a county 区县生效规则: county fields over the default; unknown → default."""
        if county is None or county not in self.counties:
            return self.default
        override = self.counties[county]
        merged = self.default.model_dump()
        merged.update({name: getattr(override, name) for name in override.model_fields_set})
        return CalendarRules.model_validate(merged)


def _describe(exc: ValidationError) -> str:
    """One line per error: ``field.path: message``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# National calendar 国家日历 (chinesecalendar) and provisional years 暂定年份
# --------------------------------------------------------------------------------------------


@cache
def _national_year(year: int) -> frozenset[date] | None:
    """Working days 工作日 of a year ``chinesecalendar`` knows; None for a provisional year 暂定年份.

    Same rule as ``chinese_calendar.is_workday`` (a listed make-up day 调休上班, or a weekday that
    is not a listed holiday 节假日), read from the library's exported ``holidays``/``workdays``
    tables once per year: ``is_workday`` itself rescans its tables on every call.
    """
    try:
        chinese_calendar.is_workday(date(year, 7, 1))
    except NotImplementedError:
        return None
    holidays, workdays = chinese_calendar.holidays, chinese_calendar.workdays
    first = date(year, 1, 1).toordinal()
    last = date(year, 12, 31).toordinal()
    days = (date.fromordinal(o) for o in range(first, last + 1))
    return frozenset(d for d in days if d in workdays or (d.weekday() < 5 and d not in holidays))


def _library_knows(year: int) -> bool:
    """True when ``chinesecalendar`` has the State Council schedule 国务院放假安排 for the year."""
    return _national_year(year) is not None


def _national_working_day(d: date) -> bool:
    """National working day 全国工作日 (library), weekday fallback 按周一至周五 for unknown years."""
    known = _national_year(d.year)
    if known is None:
        return d.weekday() < 5
    return d in known


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


def is_provisional(d: date | datetime) -> bool:
    """True when the (Asia/Shanghai) year is not known to ``chinesecalendar`` 暂定: weekday fallback."""
    return not _library_knows(_as_date(d).year)


def _spans_provisional(first: date, last: date) -> bool:
    return any(not _library_knows(y) for y in range(first.year, last.year + 1))


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
        return _national_working_day(d)

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
        """True when the year is not known to ``chinesecalendar`` 暂定 (weekday fallback)."""
        return is_provisional(d)

    def spans_provisional(self, start: datetime, end: datetime) -> bool:
        """True when any year from ``start`` to ``end`` is provisional 暂定 (flag for stored figures)."""
        a, b = _wall(start).date(), _wall(end).date()
        return _spans_provisional(min(a, b), max(a, b))

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


def _read_config(path: Path) -> CalendarConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarConfigError(
            f"cannot read calendar overrides file {path} (set {OVERRIDES_ENV} to another path): {exc}"
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CalendarConfigError(f"calendar overrides file {path} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    try:
        return CalendarConfig.model_validate(data)
    except ValidationError as exc:
        raise CalendarConfigError(f"invalid calendar overrides file {path}: {_describe(exc)}") from exc


@lru_cache(maxsize=64)
def _load_cached(path: Path, county: str | None) -> WorkingCalendar:
    return WorkingCalendar(_read_config(path), county)


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


def deadline(start: datetime, hours: float, basis: Basis) -> Deadline:
    """Due time 截止时间 on the default calendar, in working 工作时 or natural 自然时 hours."""
    return default_calendar().deadline(start, hours, basis)
