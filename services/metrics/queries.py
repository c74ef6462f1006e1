"""Indicator SQL 指标查询: every figure is one ``GROUP BY`` over ``metrics.case_facts``.

The population 统计口径 of a period is the cases dispatched in ``[start, end)`` (and by
``as_of``), not merged, with a holding unit. Each count column of
:data:`services.metrics.indicators.COUNT_COLUMNS` is a ``count(*) FILTER (WHERE …)`` whose
condition mirrors :func:`services.metrics.fact_counts.fact_counts` exactly (a test compares them),
evaluated as of ``as_of`` (e.g. 超期 = resolved after the deadline, or open past it as of
``as_of``). Rates are then computed in Python with
:func:`~services.metrics.indicators.rates_from_counts` on the small grouped result; nothing
loads every case into Python.
所有指标均为对案件事实表的一次分组聚合；比率在 Python 中由分组结果计算，不逐案加载。
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Double,
    Select,
    and_,
    any_,
    case,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.indicators import COUNT_COLUMNS, empty_counts, rates_from_counts
from services.metrics.models import case_facts as F
from services.metrics.models import units as U
from services.metrics.periods import Period

__all__ = [
    "DURATION_FIELDS",
    "GROUP_KEYS",
    "Filters",
    "case_contributions",
    "count_flags",
    "gauge_counts",
    "grouped_indicators",
    "score_counts",
]

#: The unit kind of a case: grid's kind for the unit when known, else the kind the events carried.
KIND: Final = func.coalesce(U.c.kind, F.c.unit_kind)

#: ``group_by`` keys of ``GET /v1/indicators`` → SQL expression. 可用的分组维度。
GROUP_KEYS: Final[Mapping[str, ColumnElement[Any]]] = {
    "unit": F.c.unit,
    "township": F.c.township,
    "kind": KIND,
    "source": F.c.source,
    "matter": F.c.matter,
    "matter_group": F.c.matter_group,
}

#: A unit that rejected the case (退单), one row per rejecting unit; its grid entry. 退单单位。
REJECTER: Final = func.unnest(F.c.rejected_by).table_valued("unit").render_derived(name="rejecter")
_RU: Final = U.alias("rejecter_unit")

#: ``group_by`` keys for the rejecting units' rows: the rejecting unit instead of the holder.
_REJECTION_KEYS: Final[Mapping[str, ColumnElement[Any]]] = {
    **GROUP_KEYS,
    "unit": REJECTER.c.unit,
    "kind": _RU.c.kind,
}

#: Duration statistics per row: (name, value column, "done" time that must be by as_of).
DURATION_FIELDS: Final = (
    ("handling_natural_h", F.c.handling_natural_h, F.c.resolved_at),
    ("handling_working_h", F.c.handling_working_h, F.c.resolved_at),
    ("closing_natural_h", F.c.closing_natural_h, F.c.closed_at),
    ("closing_working_h", F.c.closing_working_h, F.c.closed_at),
)


@dataclass(frozen=True, slots=True)
class Filters:
    """Row filters of an indicator query (``None`` = no filter). 查询过滤条件。"""

    unit: str | None = None
    township: str | None = None
    kind: str | None = None
    source: str | None = None
    matter: str | None = None
    matter_group: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The filters that are set. 已设置的过滤条件。"""
        return {key: value for key in GROUP_KEYS if (value := getattr(self, key)) is not None}

    def clauses(self) -> list[ColumnElement[bool]]:
        return [GROUP_KEYS[key] == value for key, value in self.as_dict().items()]


def _at(moment: datetime) -> ColumnElement[datetime]:
    return literal(moment, DateTime(timezone=True))


def population(period: Period, as_of: datetime) -> list[ColumnElement[bool]]:
    """Cases dispatched in the period (by ``as_of``), not merged, with a unit. 统计口径。"""
    return [
        F.c.dispatched_at >= _at(period.start),
        F.c.dispatched_at < _at(period.end),
        F.c.dispatched_at <= _at(as_of),
        F.c.merged_into.is_(None),
        F.c.unit.is_not(None),
        # services.metrics.source_facts.in_unit_indicators: incidents, neither invalid nor auto-recovered
        F.c.kind == "incident",
        F.c.invalid.is_(False),
        F.c.auto_recovered.is_(False),
    ]


def count_flags(as_of: datetime) -> dict[str, ColumnElement[bool]]:
    """Per count column, the SQL condition under which a case in the population counts.

    Mirrors :func:`services.metrics.fact_counts.fact_counts`. A NULL condition means "does not count".
    与 ``fact_counts`` 一一对应；条件为 NULL 即不计。
    """
    at = _at(as_of)

    def by(column: ColumnElement[Any]) -> ColumnElement[bool]:
        return column <= at

    def within(column: ColumnElement[Any], limit: ColumnElement[Any]) -> ColumnElement[bool]:
        return and_(column <= at, or_(limit.is_(None), column <= limit))

    done = func.coalesce(F.c.resolved_at, F.c.closed_at)
    overdue = and_(
        F.c.deadline.is_not(None),
        case((done <= at, done > F.c.deadline), else_=at > F.c.deadline),
    )
    in_time = within(F.c.accepted_at, F.c.accept_deadline)
    callback = F.c.satisfaction.is_not(None)
    flags: dict[str, ColumnElement[bool]] = {
        "accepted": by(F.c.accepted_at),
        "accepted_in_time": in_time,
        "resolved": by(F.c.resolved_at),
        "resolved_on_time": within(F.c.resolved_at, F.c.deadline),
        "overdue": overdue,
        "reworked": and_(by(F.c.resolved_at), F.c.reworks >= 1),
        "rejected": F.c.rejected_by_holder,
        "extended": F.c.extensions >= 1,
        "closed": by(F.c.closed_at),
        "closed_on_time": within(F.c.closed_at, F.c.deadline),
        "responded_in_time": in_time,
        "callbacks_valid": callback,
        "solved": and_(callback, F.c.solved.is_(True)),
        "satisfied": F.c.satisfaction == "satisfied",
        "basically_satisfied": F.c.satisfaction == "basically_satisfied",
        "received": true(),
        "hand_dispatched": false(),  # per dispatcher: services.metrics.dispatchers
        "accurately_dispatched": false(),
    }
    missing = set(COUNT_COLUMNS) - {"dispatched"} - set(flags)
    assert not missing, f"count columns without a SQL condition: {missing}"
    return flags


def _count_columns(as_of: datetime) -> list[ColumnElement[Any]]:
    flags = count_flags(as_of)
    columns: list[ColumnElement[Any]] = [func.count().label("dispatched")]
    columns += [func.count().filter(flags[name]).label(name) for name in COUNT_COLUMNS if name != "dispatched"]
    return columns


def _duration_columns(as_of: datetime) -> list[ColumnElement[Any]]:
    """avg, and median + P90 from ONE sort per duration (``percentile_cont(ARRAY[0.5, 0.9])``)."""
    at = _at(as_of)
    columns: list[ColumnElement[Any]] = []
    for name, value, done in DURATION_FIELDS:
        v = case((done <= at, value))
        columns += [
            func.avg(v).label(f"{name}__avg"),
            func.percentile_cont(literal([0.5, 0.9], ARRAY(Double))).within_group(v).label(f"{name}__pct"),
        ]
    return columns


def _base(
    columns: Sequence[ColumnElement[Any]],
    period: Period,
    as_of: datetime,
    filters: Filters,
    extra: Sequence[ColumnElement[bool]] = (),
) -> Select[Any]:
    return (
        select(*columns)
        .select_from(F.outerjoin(U, U.c.unit_id == F.c.unit))
        .where(*population(period, as_of), *filters.clauses(), *extra)
    )


def _rejections(
    columns: Sequence[ColumnElement[Any]],
    period: Period,
    as_of: datetime,
    filters: Filters,
    extra: Sequence[ColumnElement[bool]] = (),
) -> Select[Any]:
    """Rows of units that rejected a case they do not hold, the rejection not ruled valid.

    Mirrors :func:`services.metrics.fact_counts.rejecting_units`: such a case is in the rejecting unit's
    population for 退单率 only (``received`` and ``rejected`` + 1). 退单单位的退单率口径。
    """
    where = [
        *population(period, as_of)[:-1],
        REJECTER.c.unit != func.coalesce(F.c.unit, ""),
        not_(REJECTER.c.unit == any_(F.c.units_rejected_validly)),
        *[_REJECTION_KEYS[key] == value for key, value in filters.as_dict().items()],
        *extra,
    ]
    joined = F.join(REJECTER, true()).outerjoin(_RU, _RU.c.unit_id == REJECTER.c.unit)
    return select(*columns, func.count().label("bounced")).select_from(joined).where(*where)


def _add_bounced(counts: dict[str, int], bounced: int) -> dict[str, int]:
    counts["received"] += bounced
    counts["rejected"] += bounced
    return counts


def _counts_of(row: Mapping[str, Any]) -> dict[str, int]:
    return {name: int(row[name]) for name in COUNT_COLUMNS}


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def _durations_of(row: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for name, _, _ in DURATION_FIELDS:
        median, p90 = row[f"{name}__pct"] or (None, None)
        out[name] = {"avg": _round(row[f"{name}__avg"]), "median": _round(median), "p90": _round(p90)}
    return out


async def grouped_indicators(
    *,
    session: AsyncSession,
    period: Period,
    as_of: datetime,
    group_by: Sequence[str],
    filters: Filters,
    satisfaction_factor: float = 0.9,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Indicators per group and for all groups together, in ONE query (GROUPING SETS).

    Returns ``(rows, total)``; each has ``counts``, ``rates`` and ``durations``.
    一次查询得到各分组及合计的计数、比率与时长统计。
    """
    keys = [GROUP_KEYS[k].label(f"g_{k}") for k in group_by]
    columns = [*keys, *_count_columns(as_of), *_duration_columns(as_of)]
    stmt = _base(columns, period, as_of, filters)
    if keys:
        grouping = func.grouping(*[GROUP_KEYS[k] for k in group_by]).label("is_total")
        stmt = stmt.add_columns(grouping).group_by(
            func.grouping_sets(tuple_(*[GROUP_KEYS[k] for k in group_by]), tuple_())
        )
    rows: list[dict[str, Any]] = []
    total: dict[str, Any] | None = None
    for raw in (await session.execute(stmt)).mappings():
        counts = _counts_of(raw)
        item: dict[str, Any] = {
            "counts": counts,
            "rates": rates_from_counts(counts, satisfaction_factor),
            "durations": _durations_of(raw),
        }
        if keys and raw["is_total"] == 0:
            rows.append({**{k: raw[f"g_{k}"] for k in group_by}, **item})
        else:
            total = item
    no_stats = {f"{name}__{stat}": None for name, _, _ in DURATION_FIELDS for stat in ("avg", "pct")}

    def empty_item() -> dict[str, Any]:
        return {"counts": empty_counts(), "rates": {}, "durations": _durations_of(no_stats)}

    if total is None:  # empty population: PostgreSQL returns no grand-total row for an empty GROUPING SETS input
        total = empty_item()
    by_key = {tuple(r[k] for k in group_by): r for r in rows}
    rejection_keys = [_REJECTION_KEYS[k].label(f"g_{k}") for k in group_by]
    bounced_stmt = _rejections(rejection_keys, period, as_of, filters).group_by(*rejection_keys)
    for raw in (await session.execute(bounced_stmt)).mappings():
        key = tuple(raw[f"g_{k}"] for k in group_by)
        if group_by:
            row = by_key.get(key)
            if row is None:
                row = by_key[key] = {**dict(zip(group_by, key, strict=True)), **empty_item()}
                rows.append(row)
            _add_bounced(row["counts"], int(raw["bounced"]))
        _add_bounced(total["counts"], int(raw["bounced"]))
    for item in (*rows, total):
        item["rates"] = rates_from_counts(item["counts"], satisfaction_factor)
    rows.sort(key=lambda r: tuple("" if r[k] is None else str(r[k]) for k in group_by))
    return rows, total


async def score_counts(
    *,
    session: AsyncSession,
    period: Period,
    as_of: datetime,
    by_township: bool,
    extra: Sequence[ColumnElement[bool]] = (),
) -> list[dict[str, Any]]:
    """Counts per unit (per unit and township when ``by_township``) for scoring. 评分用分组计数。

    Each row: ``unit``, ``kind`` (grid's kind, else the events'), ``township`` (the case
    township when ``by_township``; else the unit's own township from grid, else the one
    township its cases are in, else ``"*"`` for 全县), ``name`` and ``counts``. ``extra``: the
    scheme's population conditions (:mod:`services.metrics.populations`). Units that rejected
    a case they no longer hold get its 退单 (``received``, ``rejected``).
    """
    group = [F.c.unit, F.c.township] if by_township else [F.c.unit]
    columns = [
        *[c.label(f"g_{c.name}") for c in group],
        func.max(U.c.kind).label("grid_kind"),
        func.max(F.c.unit_kind).label("event_kind"),
        func.max(U.c.name).label("name"),
        func.max(U.c.township_code).label("home_township"),
        func.min(F.c.township).label("min_township"),
        func.max(F.c.township).label("max_township"),
        *_count_columns(as_of),
    ]
    stmt = _base(columns, period, as_of, Filters(), extra).group_by(*group)
    raws = [dict(raw) for raw in (await session.execute(stmt)).mappings()]
    rejection_group = [REJECTER.c.unit.label("g_unit"), *([F.c.township.label("g_township")] if by_township else [])]
    bounced_stmt = _rejections(
        [
            *rejection_group,
            func.max(_RU.c.kind).label("grid_kind"),
            literal(None).label("event_kind"),
            func.max(_RU.c.name).label("name"),
            func.max(_RU.c.township_code).label("home_township"),
            func.min(F.c.township).label("min_township"),
            func.max(F.c.township).label("max_township"),
        ],
        period,
        as_of,
        Filters(),
        extra,
    ).group_by(*[c.element for c in rejection_group])
    keyed = {(r["g_unit"], r.get("g_township")): r for r in raws}
    for bounced in (await session.execute(bounced_stmt)).mappings():
        key = (bounced["g_unit"], bounced.get("g_township"))
        raw = keyed.get(key)
        if raw is None:
            raw = keyed[key] = {**dict(bounced), **empty_counts()}
            raws.append(raw)
        raw["received"] += int(bounced["bounced"])
        raw["rejected"] += int(bounced["bounced"])
    out: list[dict[str, Any]] = []
    for raw in raws:
        if by_township:
            township = raw["g_township"] or "*"
        elif raw["home_township"]:
            township = raw["home_township"]
        elif raw["min_township"] is not None and raw["min_township"] == raw["max_township"]:
            township = raw["min_township"]
        else:
            township = "*"
        out.append(
            {
                "unit": raw["g_unit"],
                "kind": raw["grid_kind"] or raw["event_kind"],
                "township": township,
                "name": raw["name"],
                "counts": _counts_of(raw),
            }
        )
    return out


async def case_contributions(
    *,
    session: AsyncSession,
    period: Period,
    as_of: datetime,
    unit: str,
    township: str | None,
    limit: int,
    offset: int,
    extra: Sequence[ColumnElement[bool]] = (),
) -> tuple[int, list[dict[str, Any]]]:
    """The cases behind a unit's figures, each with its 0/1 contribution per count column.

    单位得分背后的案件，以及每个案件对各计数列的贡献。Returns ``(total, page)``. The cases it holds,
    and those it rejected and no longer holds, the rejection not ruled valid: these count in its
    退单率 only (``received`` and ``rejected``), as :func:`services.metrics.fact_counts.rejecting_units` says.
    """
    flags = count_flags(as_of)
    me = literal(unit)
    holder = F.c.unit == me
    bounced = and_(
        F.c.unit.is_distinct_from(me), me == any_(F.c.rejected_by), not_(me == any_(F.c.units_rejected_validly))
    )
    filters = Filters(township=township)
    where = [*population(period, as_of)[:-1], or_(holder, bounced), *filters.clauses(), *extra]
    total = (
        await session.execute(select(func.count()).select_from(F.outerjoin(U, U.c.unit_id == F.c.unit)).where(*where))
    ).scalar_one()
    columns: list[ColumnElement[Any]] = [
        F.c.case_id,
        F.c.township,
        F.c.source,
        F.c.matter,
        F.c.urgency,
        F.c.time_basis,
        F.c.reported_at,
        F.c.dispatched_at,
        F.c.accepted_at,
        F.c.resolved_at,
        F.c.closed_at,
        F.c.deadline,
        F.c.reworks,
        F.c.extensions,
        F.c.rejections,
        F.c.supervisions,
        F.c.escalations,
        F.c.satisfaction,
        F.c.handling_natural_h,
        F.c.handling_working_h,
        F.c.closing_natural_h,
        F.c.closing_working_h,
        F.c.provisional,
        F.c.durations_provisional,
        *[func.coalesce(cond, false()).label(f"c_{name}") for name, cond in flags.items()],
        func.coalesce(holder, false()).label("is_holder"),
    ]
    stmt = (
        select(*columns)
        .select_from(F.outerjoin(U, U.c.unit_id == F.c.unit))
        .where(*where)
        .order_by(F.c.dispatched_at, F.c.case_id)
        .limit(limit)
        .offset(offset)
    )
    page: list[dict[str, Any]] = []
    for raw in (await session.execute(stmt)).mappings():
        if raw["is_holder"]:
            counts = {"dispatched": 1, **{name: int(bool(raw[f"c_{name}"])) for name in flags}}
        else:  # a case it bounced: its 退单 only
            counts = {**empty_counts(), "received": 1, "rejected": 1}
        item = {k: v for k, v in raw.items() if not k.startswith("c_") and k != "is_holder"}
        item["case_id"] = str(item["case_id"])
        for key, value in item.items():
            if isinstance(value, datetime):
                item[key] = value.isoformat()
        item["counts"] = {name: counts[name] for name in COUNT_COLUMNS}
        page.append(item)
    return int(total), page


async def gauge_counts(*, session: AsyncSession, now: datetime) -> list[tuple[str, str, int, int]]:
    """ONE grouped query for the Prometheus gauges: open and overdue cases per township and kind.

    在办案件数与超期在办案件数（按乡镇、单位类型）。Open = dispatched, not merged, not closed;
    overdue = open and (resolved after, or unresolved past) the deadline in force.
    """
    at = _at(now)
    overdue = and_(F.c.deadline.is_not(None), func.coalesce(F.c.resolved_at, at) > F.c.deadline)
    stmt = (
        select(
            F.c.township,
            KIND.label("kind"),
            func.count().label("open"),
            func.count().filter(overdue).label("overdue"),
        )
        .select_from(F.outerjoin(U, U.c.unit_id == F.c.unit))
        .where(
            F.c.closed_at.is_(None), F.c.dispatched_at.is_not(None), F.c.merged_into.is_(None), F.c.kind == "incident"
        )
        .group_by(F.c.township, KIND)
    )
    return [
        (r.township or "unknown", r.kind or "unknown", int(r.open), int(r.overdue))
        for r in (await session.execute(stmt)).all()
    ]
