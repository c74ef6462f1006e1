"""Case durations 案件时长 in natural 自然时 and working hours 工作时.

* 处置时长 / 办结时长 (handling): ``dispatched_at → resolved_at``.
* 结案时长 (closing): ``reported_at → closed_at``.

Two implementations of one rule, both driven by :mod:`shared.calendar`:

* :func:`durations` — per case, in Python, when a fact is upserted by the consumer;
* :class:`SqlWorkingTime` — the same arithmetic as a SQL expression over the facts table,
  for recomputing *all* stored durations at once (the calendar override file changed, or a
  provisional 暂定 year got published). It takes the calendar's per-day cumulative working
  minutes 累计工作分钟 as one ``int[]`` parameter (built from
  :meth:`WorkingCalendar.is_working_day`), so PostgreSQL does an O(1) array lookup per
  timestamp and nothing row-by-row crosses the wire.

Position of a time ``t`` (Asia/Shanghai wall time, day ``d``, minute of day ``m`` with
fraction): ``cum[d] + (working(d) ? Σ clamp(m − s, 0, e − s) over periods : 0)``; working
minutes between two times = ``max(pos(b) − pos(a), 0)``. That is exactly what
``WorkingCalendar.working_hours_between`` computes (a test checks both agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.calendar import SHANGHAI, WorkingCalendar, is_provisional, natural_hours_between

__all__ = ["Durations", "SqlWorkingTime", "durations", "known_year_range", "recompute_working_durations"]


@dataclass(frozen=True, slots=True)
class Durations:
    """A case's durations in hours (``None`` until both ends exist). 案件时长（小时）。"""

    handling_natural_h: float | None
    handling_working_h: float | None
    closing_natural_h: float | None
    closing_working_h: float | None
    provisional: bool
    """A working figure spans a year the calendar library does not know yet. 工作时长涉及暂定年份。"""


def durations(
    calendar: WorkingCalendar,
    *,
    reported_at: datetime | None,
    dispatched_at: datetime | None,
    resolved_at: datetime | None,
    closed_at: datetime | None,
) -> Durations:
    """处置时长 and 结案时长 in natural and working hours. 计算处置时长与结案时长。"""
    provisional = False

    def pair(start: datetime | None, end: datetime | None) -> tuple[float | None, float | None]:
        nonlocal provisional
        if start is None or end is None:
            return None, None
        provisional = provisional or calendar.spans_provisional(start, end)
        return natural_hours_between(start, end), calendar.working_hours_between(start, end)

    handling = pair(dispatched_at, resolved_at)
    closing = pair(reported_at, closed_at)
    return Durations(handling[0], handling[1], closing[0], closing[1], provisional)


def known_year_range(lo: int = 1990, hi: int = 2100) -> tuple[int, int]:
    """First and last year ``chinesecalendar`` knows (a contiguous range). 日历库已知年份范围。"""
    known = [y for y in range(lo, hi + 1) if not is_provisional(date(y, 7, 1))]
    if not known:  # pragma: no cover - the library always knows some years
        return (hi + 1, lo - 1)
    return known[0], known[-1]


@dataclass(frozen=True)
class SqlWorkingTime:
    """A calendar compiled for SQL: cumulative working minutes per day from ``first_day``.

    ``cum[i]`` = working minutes before day ``first_day + i`` (``len = days + 1``);
    day ``i`` is a working day iff ``cum[i + 1] > cum[i]``.
    """

    first_day: date
    cum: list[int]
    periods: tuple[tuple[int, int], ...]
    known_years: tuple[int, int]

    @classmethod
    def build(cls, calendar: WorkingCalendar, first_year: int, last_year: int) -> SqlWorkingTime:
        """Compile ``calendar`` for the years ``first_year..last_year``. 编译指定年份的日历。"""
        first = date(first_year, 1, 1)
        days = date(last_year, 12, 31).toordinal() - first.toordinal() + 1
        per_day = calendar.rules.minutes_per_day
        cum = [0] * (days + 1)
        acc = 0
        for i in range(days):
            cum[i] = acc
            if calendar.is_working_day(date.fromordinal(first.toordinal() + i)):
                acc += per_day
        cum[days] = acc
        return cls(first, cum, calendar.rules.periods_minutes, known_year_range())

    def position(self, column: str) -> str:
        """SQL: working minutes from ``first_day`` to the timestamptz ``column``. 工作分钟位置。

        Pure float8 arithmetic on the epoch (Asia/Shanghai = UTC+8, no daylight saving since
        1991, see :data:`SQL_FIRST_YEAR`): no time-zone lookup and no numeric type, and no
        sub-select, so PostgreSQL can run it in parallel workers.
        """
        f8 = "::float8"
        epoch = f"(date_part('epoch', {column}) + 28800{f8})"
        day = f"floor({epoch} / 86400{f8})"
        idx = f"({day}::int - {_epoch_days(self.first_day) - 1})"
        minute = f"(({epoch} - {day} * 86400{f8}) / 60{f8})"
        within = " + ".join(f"LEAST(GREATEST({minute} - {s}{f8}, 0{f8}), {e - s}{f8})" for s, e in self.periods)
        cum = "(CAST(:cum AS int[]))"
        return f"({cum}[{idx}] + CASE WHEN {cum}[{idx} + 1] > {cum}[{idx}] THEN {within} ELSE 0{f8} END)"

    def hours_between(self, start: str, end: str) -> str:
        """SQL: working hours from ``start`` to ``end`` (NULL if either is NULL). 工作时长。"""
        return (
            f"CASE WHEN {start} IS NULL OR {end} IS NULL THEN NULL "
            f"ELSE GREATEST({self.position(end)} - {self.position(start)}, 0::float8) / 60::float8 END"
        )

    def provisional(self, pairs: list[tuple[str, str]]) -> str:
        """SQL: any working figure spans a year outside the library's known range. 是否暂定。"""
        lo, hi = self.known_years
        bounds = f"timestamptz '{lo}-01-01 00:00+08'", f"timestamptz '{hi + 1}-01-01 00:00+08'"
        parts = [
            f"({a} IS NOT NULL AND {b} IS NOT NULL "
            f"AND (least({a}, {b}) < {bounds[0]} OR greatest({a}, {b}) >= {bounds[1]}))"
            for a, b in pairs
        ]
        return "(" + " OR ".join(parts) + ")"

    def params(self) -> dict[str, Any]:
        return {"cum": self.cum}


#: Columns of the facts table the recompute reads and writes.
_TABLE: Final = "metrics.case_facts"
#: The SQL path reads Asia/Shanghai as a fixed UTC+8, exact from 1992 (China dropped daylight
#: saving after 1991); older rows keep the durations Python computed at upsert time.
SQL_FIRST_YEAR: Final = 1992


def _epoch_days(day: date) -> int:
    """Days from 1970-01-01 to ``day``. 距 1970-01-01 的天数。"""
    return (day - date(1970, 1, 1)).days


async def recompute_working_durations(
    *, conn: AsyncConnection, calendar: WorkingCalendar, only_provisional: bool = False
) -> int:
    """Recompute every stored working duration in SQL; returns rows changed. 以 SQL 重算工作时长。

    Natural durations never change with the calendar and are left alone. Only rows whose
    figures actually change are written. ``only_provisional``: just the rows flagged 暂定.
    """
    floor = f"timestamptz '{SQL_FIRST_YEAR}-01-01 00:00+08'"
    where = (
        f"{'durations_provisional' if only_provisional else 'TRUE'} "
        f"AND coalesce(least(reported_at, dispatched_at), {floor}) >= {floor}"
    )
    bounds = (
        await conn.execute(
            text(
                f"SELECT min(least(reported_at, dispatched_at)), max(greatest(resolved_at, closed_at, dispatched_at)) "
                f"FROM {_TABLE} WHERE {where}"
            )
        )
    ).one()
    if bounds[0] is None or bounds[1] is None:
        return 0
    first_year = bounds[0].astimezone(SHANGHAI).year
    last_year = bounds[1].astimezone(SHANGHAI).year
    sql = SqlWorkingTime.build(calendar, first_year, max(last_year, first_year))
    handling = sql.hours_between("dispatched_at", "resolved_at")
    closing = sql.hours_between("reported_at", "closed_at")
    provisional = sql.provisional([("dispatched_at", "resolved_at"), ("reported_at", "closed_at")])
    # 1. compute every row once and keep the ones that change — a SELECT, so PostgreSQL may run it
    #    in parallel workers (an UPDATE never is); each expression appears once in the filter.
    await conn.execute(text("DROP TABLE IF EXISTS pg_temp.metrics_recompute"))
    await conn.execute(
        text(
            f"""
            CREATE TEMP TABLE metrics_recompute ON COMMIT DROP AS
            SELECT case_id, handling, closing, provisional FROM (
                SELECT case_id, handling_working_h AS old_handling, closing_working_h AS old_closing,
                       durations_provisional AS old_provisional,
                       {handling} AS handling, {closing} AS closing, {provisional} AS provisional
                FROM {_TABLE} WHERE {where}
            ) AS n
            WHERE abs(coalesce(old_handling, -1) - coalesce(handling, -1)) > 1e-9
               OR abs(coalesce(old_closing, -1) - coalesce(closing, -1)) > 1e-9
               OR old_provisional IS DISTINCT FROM provisional
            """
        ),
        sql.params(),
    )
    # 2. write only those rows. 仅写回有变化的行。
    statement = text(
        f"""
        UPDATE {_TABLE} AS f SET handling_working_h = n.handling, closing_working_h = n.closing,
            durations_provisional = n.provisional, updated_at = now()
        FROM metrics_recompute AS n WHERE f.case_id = n.case_id
        """
    )
    result = await conn.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)
