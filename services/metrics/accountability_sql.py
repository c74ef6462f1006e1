"""监督问责 report: which cases and which of their events the rules must see, in SQL. 问责报告的候选案件与事件。

The rules are in ``accountability.py`` and run unchanged on what these queries return; the queries only
narrow, never decide. Each picks a *superset* of the cases a finding can come from, and for each of them
every event of the types its rules read, so the rules give the answer they would give on every event of
every case (``tests/integration/test_accountability_equivalence.py`` compares both on 2 000 seeded cases):

- 多次超期: the facts due in the period (deadline in it, by ``as_of``), not merged, not finished on time;
- 延期后再次超期 / 退单被判无效 / 多次重办返工: cases with an event of :data:`HAPPENS_AT` in the period that
  can be the moment of such a finding (a 超期 mark of a case marked more than once, a 判定退单 with a false
  ``valid``/``rejection_valid``, a 重办, a 核查 with a false ``passed``/``verification_passed``); all their
  events of those types;
- 吹哨未按时报到: cases with a 吹哨 whose 报到 deadline may fall in the period (a string that is not
  ``YYYY-MM-DD…``, or whose date is within 3 days of it: an offset moves a wall date by less than two
  days); their 吹哨 and 报到;
- 督办未响应: cases with a 督办 from :func:`~services.metrics.accountability.earliest_supervision` to the
  period's end; all their events (the holder is read from any event).

Which cases the report covers at all (:func:`in_scope`) is what it always was: those with an event in
the period or :data:`LOOKBACK` before it, or due in it (a whistle older than that whose 报到 deadline
falls in the period is seen only if the case is otherwise touched). 报告覆盖范围不变。
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import ColumnElement, Select, and_, exists, func, not_, or_, select, union
from sqlalchemy.sql.elements import KeyedColumnElement

from services.metrics.accountability import FACT_FIELDS, HAPPENS_AT, WHISTLE_TYPES
from services.metrics.models import case_events, case_facts
from services.metrics.periods import TZ, Period

#: How far before the period a case's events make it part of the report 回溯期.
LOOKBACK: Final = timedelta(days=60)

_e, _f = case_events.c, case_facts.c


def in_scope(period: Period, township: str | None) -> ColumnElement[bool]:
    """A ``case_facts`` row the report covers: touched in the period or its lookback, or due in it; of
    ``township`` when given. 报告覆盖的案件。"""
    touched = exists().where(
        case_events.c.case_id == _f.case_id,
        case_events.c.occurred_at >= period.start - LOOKBACK,
        case_events.c.occurred_at < period.end,
    )
    scope = or_(touched, and_(_f.deadline >= period.start, _f.deadline < period.end))
    return scope if township is None else and_(scope, _f.township == township)


def _deadline_may_fall_in(period: Period) -> ColumnElement[bool]:
    """A 吹哨 event whose 报到 deadline (top-level or in ``details``) may fall in ``period``."""
    low = (period.start.astimezone(TZ).date() - timedelta(days=3)).isoformat()
    high = (period.end.astimezone(TZ).date() + timedelta(days=3)).isoformat()

    def near(value: KeyedColumnElement[object] | ColumnElement[object]) -> ColumnElement[bool]:
        spelled = value.astext
        return and_(
            func.jsonb_typeof(value) == "string",
            or_(
                not_(spelled.regexp_match(r"^\d{4}-\d{2}-\d{2}")),
                func.substr(spelled, 1, 10).collate("C").between(low, high),
            ),
        )

    return or_(near(_e.data["report_deadline"]), near(_e.data["details"]["report_deadline"]))


def _false(*keys: str) -> ColumnElement[bool]:
    """One of the event's ``keys`` is false (or the text "false": a superset). 任一字段为假。"""
    return or_(*(_e.data[key].astext == "false" for key in keys))


def _may_be_a_moment() -> ColumnElement[bool]:
    """An event of :data:`HAPPENS_AT` that can be when its finding happens: a 超期 mark of a case marked more
    than once, a 判定退单 ruled invalid, a 重办, a failed 核查. 可能构成问责事项发生时刻的事件。"""
    other = case_events.alias("other_mark")
    marked_again = exists().where(
        other.c.case_id == _e.case_id, other.c.type == "case.overdue", other.c.event_id != _e.event_id
    )
    return or_(
        and_(_e.type == "case.overdue", marked_again),
        and_(_e.type == "case.rejection_ruled", _false("valid", "rejection_valid")),
        _e.type == "case.reopened",
        and_(_e.type == "case.verified", _false("passed", "verification_passed")),
    )


def candidate_cases(
    *, period: Period, as_of: datetime, township: str | None, supervised_from: datetime
) -> Select[tuple[uuid.UUID, bool]]:
    """The cases an event-borne finding can come from, in scope, with whether a 督办 made them one
    (those need all their events). 可能产生事件类问责事项的案件。"""
    until = and_(_e.occurred_at < period.end, _e.occurred_at <= as_of)
    happened = select(_e.case_id).where(
        _e.type.in_(sorted(HAPPENS_AT)), _e.occurred_at >= period.start, until, _may_be_a_moment()
    )
    supervised = select(_e.case_id).where(_e.type == "case.supervised", _e.occurred_at >= supervised_from, until)
    whistled = select(_e.case_id).where(_e.type == "case.escalated", _deadline_may_fall_in(period))
    return select(_f.case_id, _f.case_id.in_(supervised).label("supervised")).where(
        _f.case_id.in_(union(happened, supervised, whistled)), in_scope(period, township)
    )


def case_fact_rows(
    *, period: Period, as_of: datetime, township: str | None, cases: Sequence[uuid.UUID]
) -> Select[tuple[object, ...]]:
    """The fact fields the rules read, of ``cases`` and of the cases due in the period that did not
    finish on time (多次超期's population). 规则所需的案件事实字段。"""
    columns = [_f[name] for name in FACT_FIELDS]
    done = func.coalesce(_f.resolved_at, _f.closed_at)
    due = select(*columns).where(
        _f.deadline >= period.start,
        _f.deadline < period.end,
        _f.deadline <= as_of,
        _f.merged_into.is_(None),
        or_(done.is_(None), done > _f.deadline, done > as_of),
    )
    if township is not None:
        due = due.where(_f.township == township)
    return union(select(*columns).where(_f.case_id == func.any(list(cases))), due)  # type: ignore[return-value]


def case_event_rows(*, cases: Sequence[uuid.UUID], supervised: Sequence[uuid.UUID]) -> Select[tuple[object, ...]]:
    """The events the rules read of ``cases``: those of :data:`HAPPENS_AT` and the whistle types, and
    every event of the ``supervised`` ones. 规则所需的事件。"""
    return select(_e.event_id, _e.case_id, _e.type, _e.version, _e.occurred_at, _e.data).where(
        _e.case_id == func.any(list(cases)),
        or_(_e.type.in_(sorted(HAPPENS_AT | WHISTLE_TYPES)), _e.case_id == func.any(list(supervised))),
    )
