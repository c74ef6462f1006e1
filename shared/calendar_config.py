"""The calendar override file 工作日历覆盖配置: its model, validation and reading.

``deploy/calendar/overrides.yaml`` (or env ``CALENDAR_OVERRIDES``) holds working hours 工作时间
and local day overrides per county 区县, and the State Council's yearly holiday notices 放假安排通知
once an operator loads them. :mod:`shared.calendar` builds working calendars from it.
"""

from __future__ import annotations

import re
from datetime import date, time
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from shared.national_calendar import Notice

#: Environment variable overriding the override-file path 覆盖配置路径.
OVERRIDES_ENV: Final = "CALENDAR_OVERRIDES"
#: Default working hours 默认工作时间: 08:30–12:00 and 13:30–17:30 (7.5 h).
DEFAULT_WORKING_HOURS: Final[tuple[tuple[str, str], ...]] = (("08:30", "12:00"), ("13:30", "17:30"))
#: Years a calendar can compute; outside this an input is treated as bad data (ValueError).
MIN_YEAR: Final = 1900
MAX_YEAR: Final = 2200

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")
_COUNTY_CODE = re.compile(r"^\d{6}$")

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


class HolidayNotice(BaseModel):
    """One year's State Council holiday notice 国务院放假安排通知, as an operator loads it.

    ``rest_days``: every day off the notice lists 放假日期 (weekends inside a holiday run included);
    ``working_days``: the make-up working days 调休上班日期; ``document``: its 文号.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rest_days: frozenset[date]
    working_days: frozenset[date] = frozenset()
    document: str | None = None


class CalendarConfig(BaseModel):
    """The whole override file 覆盖配置文件: ``default`` rules, per-county 区县 overrides and the
    national holiday notices 放假安排通知 per year.

    Under ``counties`` (keyed by the 6-digit county division code 区县区划代码) each field that is
    present replaces the default's field of the same name; absent fields keep the default.
    Under ``notices`` (keyed by year) a loaded notice makes that year final (no longer 暂定).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: CalendarRules = CalendarRules()
    counties: dict[str, CalendarRules] = {}
    notices: dict[int, HolidayNotice] = {}

    @model_validator(mode="after")
    def _check_notices(self) -> CalendarConfig:
        for year, notice in self.notices.items():
            if not MIN_YEAR <= year <= MAX_YEAR:
                raise ValueError(f"notices.{year}: year outside {MIN_YEAR}–{MAX_YEAR}")
            stray = sorted(d for d in notice.rest_days | notice.working_days if d.year != year)
            if stray:
                raise ValueError(f"notices.{year}: {stray[0].isoformat()} is not in {year}")
            both = notice.rest_days & notice.working_days
            if both:
                raise ValueError(f"notices.{year}: {min(both).isoformat()} is both a rest day and a working day")
        return self

    def national_notices(self) -> dict[int, Notice]:
        """The loaded notices for :class:`~shared.national_calendar.NationalCalendar`."""
        return {y: Notice(n.rest_days, n.working_days, n.document) for y, n in self.notices.items()}

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


def read_config(path: Path) -> CalendarConfig:
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
