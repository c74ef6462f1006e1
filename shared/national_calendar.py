"""The national working-day calendar 全国工作日历: which days of a year are working days, and
whether that answer is final (已公布) or provisional (暂定).

Three sources, the first that covers a year wins:

1. **The State Council's yearly notice 国务院办公厅放假安排通知**, loaded by an operator into the
   override file's ``notices`` (rest days 放假日期 and make-up working days 调休上班日期). Final.
2. **``chinesecalendar``**, which carries the published notices up to the year it was released
   for. Final.
3. **The statutory holidays by rule 法定节假日（按规则）** for any other year: 元旦 1/1, 春节
   (除夕 to 初三), 清明, 劳动节 5/1–2, 端午, 中秋, 国庆 10/1–3, with the law's make-up rest day
   when one falls on a weekend (《全国年节及纪念日放假办法》第六条). The ``holidays`` package
   computes them, lunar dates included. Weekends are rest days. **Provisional**: the 调休 swaps
   and bridge days only come with the notice (usually published in November), so figures and
   deadlines that touch such a year carry the provisional flag until the notice is loaded.

Pure: no I/O; the override file is read by :mod:`shared.calendar`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Final, Literal

import chinese_calendar
import holidays

__all__ = ["NationalCalendar", "Notice", "YearSource", "statutory_rest_days"]

#: Where a year's working days came from 年度日历来源.
YearSource = Literal["notice", "chinesecalendar", "statutory"]
NOTICE: Final[YearSource] = "notice"  # 国务院通知（覆盖配置中加载）
LIBRARY: Final[YearSource] = "chinesecalendar"  # 日历库（已公布年份）
STATUTORY: Final[YearSource] = "statutory"  # 法定节假日按规则推算（暂定）


@dataclass(frozen=True, slots=True)
class Notice:
    """One year's State Council holiday notice 放假安排通知: rest days and make-up working days."""

    rest_days: frozenset[date]
    working_days: frozenset[date]
    document: str | None = None  # 文号, e.g. 国办发明电〔2026〕X号


@cache
def _library_year(year: int) -> frozenset[date] | None:
    """Working days of a year ``chinesecalendar`` knows; None when it does not know the year.

    Same rule as ``chinese_calendar.is_workday`` (a listed make-up day, or a weekday that is not a
    listed holiday), read from the library's tables once per year: ``is_workday`` itself rescans
    its tables on every call.
    """
    try:
        chinese_calendar.is_workday(date(year, 7, 1))
    except NotImplementedError:
        return None
    rest, work = chinese_calendar.holidays, chinese_calendar.workdays
    return frozenset(d for d in _days(year) if d in work or (d.weekday() < 5 and d not in rest))


@cache
def statutory_rest_days(year: int) -> frozenset[date]:
    """Statutory public holidays of ``year`` by rule 法定节假日（按规则推算）, lunar ones included.

    From the ``holidays`` package's China calendar (public category), which also applies the
    law's make-up rest day for a holiday that falls on a weekend.
    """
    return frozenset(holidays.country_holidays("CN", years=year, categories=("public",)).keys())


def _days(year: int) -> list[date]:
    first, last = date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
    return [date.fromordinal(o) for o in range(first, last + 1)]


def _working_by_rule(year: int, rest: frozenset[date], work: frozenset[date]) -> frozenset[date]:
    return frozenset(d for d in _days(year) if d in work or (d.weekday() < 5 and d not in rest))


class NationalCalendar:
    """Working days 全国工作日 per year, from notices, ``chinesecalendar`` or the statutory rule.

    ``notices``: year → :class:`Notice` loaded from the override file (beats the library).
    Immutable; each year is computed once.
    """

    def __init__(self, notices: Mapping[int, Notice] | None = None) -> None:
        self.notices: Final[dict[int, Notice]] = dict(notices or {})
        self._years: dict[int, tuple[frozenset[date], YearSource]] = {}

    def _year(self, year: int) -> tuple[frozenset[date], YearSource]:
        known = self._years.get(year)
        if known is not None:
            return known
        notice = self.notices.get(year)
        if notice is not None:
            result = (_working_by_rule(year, notice.rest_days, notice.working_days), NOTICE)
        else:
            library = _library_year(year)
            if library is not None:
                result = (library, LIBRARY)
            else:
                result = (_working_by_rule(year, statutory_rest_days(year), frozenset()), STATUTORY)
        self._years[year] = result
        return result

    def is_working_day(self, d: date) -> bool:
        """National working day 全国工作日 (before any county override)."""
        return d in self._year(d.year)[0]

    def source(self, year: int) -> YearSource:
        """Where ``year``'s working days come from: ``notice``, ``chinesecalendar`` or ``statutory``."""
        return self._year(year)[1]

    def is_provisional(self, year: int) -> bool:
        """True while ``year`` has no published notice 暂定 (statutory holidays and weekends only)."""
        return self.source(year) == STATUTORY
