"""Assessment periods. 考核周期。

A period is half-open ``[start, end)`` in Asia/Shanghai (北京时间).
周期为左闭右开区间 ``[start, end)``，时区为 Asia/Shanghai。

Period ids 周期编号:

===============  =====================  ==================================
id               kind 类型               example 示例
===============  =====================  ==================================
``2026-11-20``   ``day`` 日              2026-11-20 00:00 → 2026-11-21 00:00
``2026-W47``     ``week`` ISO 周         Monday → next Monday (ISO 8601)
``2026-11``      ``month`` 月            2026-11-01 → 2026-12-01
``2026-Q4``      ``quarter`` 季度        2026-10-01 → 2027-01-01
``2026``         ``year`` 年             2026-01-01 → 2027-01-01
``A..B``         ``range`` 自定义区间     see :func:`period_between`
===============  =====================  ==================================

ISO weeks belong to the ISO year: ``2026-W01`` starts on Monday 2025-12-29.
ISO 周按 ISO 年计：``2026-W01`` 从 2025-12-29（周一）开始。

A period lies within :data:`EARLIEST` … :data:`LATEST` (2000–2099): ``0001-01`` is no
assessment period, and its dates would overflow every conversion to UTC downstream.
周期须落在 2000–2099 年之间。
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

__all__ = [
    "EARLIEST",
    "LATEST",
    "PERIOD_ID_PATTERN",
    "TZ",
    "MomentError",
    "Period",
    "PeriodKind",
    "evaluation_moment",
    "parse_period",
    "period_between",
    "plausible_moment",
]

TZ: Final = ZoneInfo("Asia/Shanghai")
"""The platform's time zone. 平台时区。"""

PeriodKind = Literal["day", "week", "month", "quarter", "year", "range"]

PERIOD_ID_PATTERN: Final = (
    r"^(?:20\d{2}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01]))?|-W(?:0[1-9]|[1-4]\d|5[0-3])|-Q[1-4])?"
    r"|20\d{2}-\d{2}-\d{2}[0-9T:+\-.Z]*\.\.20\d{2}-\d{2}-\d{2}[0-9T:+\-.Z]*)$"
)
"""What a period id looks like (the OpenAPI pattern; :func:`parse_period` decides). 周期编号格式。"""

EARLIEST: Final = datetime(2000, 1, 1, tzinfo=TZ)
"""No period starts before this. 周期最早起点。"""
LATEST: Final = datetime(2100, 1, 1, tzinfo=TZ)
"""No period ends after this. 周期最晚终点。"""

_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])")
_YEAR = re.compile(r"(\d{4})")


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open period ``[start, end)`` in Asia/Shanghai. 左闭右开的考核周期。"""

    id: str
    start: datetime
    end: datetime
    kind: PeriodKind = "range"

    def __post_init__(self) -> None:
        plausible_moment(self.start, "start")
        plausible_moment(self.end, "end")

    def __contains__(self, moment: object) -> bool:
        """``moment in period``: start ≤ moment < end. 时刻是否落在周期内。"""
        if not isinstance(moment, datetime):
            return False
        return self.start <= _aware(moment) < self.end

    def is_closed(self, now: datetime) -> bool:
        """True once the period has ended. 周期是否已结束。"""
        return _aware(now) >= self.end

    def default_as_of(self, now: datetime) -> datetime:
        """Evaluation time: the end for a closed period, else ``now``.

        默认评价时点：已结束的周期取期末，否则取当前时间。
        """
        return self.end if self.is_closed(now) else _aware(now)

    def as_json(self) -> dict[str, str]:
        """The period as the APIs show it: id, kind, start, end. 周期的接口表示。"""
        return {"id": self.id, "kind": self.kind, "start": self.start.isoformat(), "end": self.end.isoformat()}


class MomentError(ValueError):
    """An evaluation time 评价时点 that cannot be used: without a time zone, or outside 2000–2099."""


def evaluation_moment(period: Period, as_of: datetime | None, *, now: datetime) -> datetime:
    """The time to evaluate ``period`` at: ``as_of`` when given (aware, plausible), else
    :meth:`Period.default_as_of`. Raises :class:`MomentError`. 评价时点（默认：期末或当前）。"""
    if as_of is None:
        return period.default_as_of(now)
    if as_of.tzinfo is None:
        raise MomentError("as_of must carry a time zone, e.g. +08:00")
    try:
        return plausible_moment(as_of, "as_of")
    except ValueError as exc:
        raise MomentError(str(exc)) from exc


def plausible_moment(moment: datetime, what: str = "time") -> datetime:
    """``moment`` when it lies within :data:`EARLIEST` … :data:`LATEST`, else ``ValueError``. 时间须在合理范围内。"""
    try:
        inside = EARLIEST <= _aware(moment) <= LATEST
    except OverflowError:  # an offset that pushes the time outside datetime's range
        inside = False
    if not inside:
        raise ValueError(f"{what} {moment:%Y-%m-%d} is outside {EARLIEST.year}–{LATEST.year - 1}")
    return moment


def _aware(moment: datetime) -> datetime:
    """Naive datetimes are read as Beijing time. 无时区的时间按北京时间解释。"""
    return moment.replace(tzinfo=TZ) if moment.tzinfo is None else moment


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=TZ)


def _first_of_month(year: int, month: int) -> date:
    """First day of a month, month may be 13 (→ January next year). 某月 1 日（允许 13 月进位）。"""
    return date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def parse_period(period_id: str) -> Period:
    """Parse a period id into a :class:`Period`. 解析周期编号。

    Raises ``ValueError`` naming the id when it is not valid.
    编号无效时抛出 ``ValueError``，信息中包含该编号。
    """
    pid = period_id.strip() if isinstance(period_id, str) else period_id
    if not isinstance(pid, str) or not pid:
        raise ValueError(f"invalid period id {period_id!r}: empty")
    try:
        if ".." in pid:
            left, _, right = pid.partition("..")
            return period_between(left, right)
        if m := _DAY.fullmatch(pid):
            day = date(int(m[1]), int(m[2]), int(m[3]))
            return Period(pid, _midnight(day), _midnight(day + timedelta(days=1)), "day")
        if m := _WEEK.fullmatch(pid):
            monday = date.fromisocalendar(int(m[1]), int(m[2]), 1)
            return Period(pid, _midnight(monday), _midnight(monday + timedelta(days=7)), "week")
        if m := _MONTH.fullmatch(pid):
            year, month = int(m[1]), int(m[2])
            if not 1 <= month <= 12:
                raise ValueError(f"month {month} out of range")
            start = date(year, month, 1)
            return Period(pid, _midnight(start), _midnight(_first_of_month(year, month + 1)), "month")
        if m := _QUARTER.fullmatch(pid):
            year, quarter = int(m[1]), int(m[2])
            first = 3 * (quarter - 1) + 1
            return Period(
                pid,
                _midnight(date(year, first, 1)),
                _midnight(_first_of_month(year, first + 3)),
                "quarter",
            )
        if m := _YEAR.fullmatch(pid):
            year = int(m[1])
            if year < 1:
                raise ValueError("year 0")
            return Period(pid, _midnight(date(year, 1, 1)), _midnight(date(year + 1, 1, 1)), "year")
    except ValueError as exc:
        raise ValueError(f"invalid period id {period_id!r}: {exc}") from exc
    raise ValueError(
        f"invalid period id {period_id!r}: expected YYYY-MM-DD, YYYY-Www, YYYY-MM, YYYY-Qn, YYYY or FROM..TO"
    )


def _bound(value: date | datetime | str, *, is_end: bool) -> tuple[datetime, str]:
    """One bound of an explicit range, and its text for the id. 区间端点及其在编号中的写法。"""
    if isinstance(value, str):
        text = value.strip()
        if _DAY.fullmatch(text):
            value = date.fromisoformat(text)
        else:
            try:
                value = datetime.fromisoformat(text)
            except ValueError as exc:
                raise ValueError(f"not a date or datetime: {text!r}") from exc
    if isinstance(value, datetime):
        moment = _aware(value)
        return moment, moment.isoformat()
    # A bare date: the start is its midnight; an end date is inclusive (end = next midnight).
    # 纯日期：起点取当日零时；终点日期包含当日（即次日零时）。
    day = value + timedelta(days=1) if is_end else value
    return _midnight(day), value.isoformat()


def period_between(start: date | datetime | str, end: date | datetime | str) -> Period:
    """An explicit period from ``start`` to ``end``. 自定义区间。

    Datetimes are taken as given (``end`` exclusive); a bare date as ``end``
    is inclusive (the period runs to the next midnight), so
    ``period_between("2026-11-01", "2026-11-30")`` equals month ``2026-11``.
    The id is ``"<from>..<to>"`` and parses back to the same period.
    时间点按原样（终点不含）；终点为纯日期时包含当天。编号为 ``"起..止"``，可再解析回同一周期。
    """
    try:
        start_dt, start_text = _bound(start, is_end=False)
        end_dt, end_text = _bound(end, is_end=True)
    except ValueError as exc:
        raise ValueError(f"invalid period {start!s}..{end!s}: {exc}") from exc
    pid = f"{start_text}..{end_text}"
    if end_dt <= start_dt:
        raise ValueError(f"invalid period id {pid!r}: end is not after start")
    return Period(pid, start_dt, end_dt, "range")
