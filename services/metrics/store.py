"""Event log and case facts in PostgreSQL 事件日志与案件事实的存取.

:func:`apply_event` is what makes the facts idempotent and order-independent: the event is
stored in ``case_events`` (``ON CONFLICT DO NOTHING`` on its id), then the case's fact is
recomputed from *all* its stored events with the pure :func:`reduce_events` and upserted.
Replaying the topic, a duplicate, or events arriving out of order therefore give the same
row. 先存事件（按 id 去重），再由该案件全部事件重新归约并写入事实行，故重放、重复、乱序结果相同。
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.facts import CaseEventRecord, CaseFact, counts_rejection, reduce_events
from services.metrics.models import case_events, case_facts
from services.metrics.worktime import durations
from shared.calendar import WorkingCalendar

__all__ = [
    "FactChange",
    "apply_event",
    "apply_events",
    "event_record",
    "fact_row",
    "load_fact_row",
    "recompute_fact",
]

#: Columns compared to decide whether a recomputed fact changed (all but bookkeeping).
_COMPARED: Final = tuple(c.name for c in case_facts.columns if c.name not in ("updated_at",))


@dataclass(frozen=True, slots=True)
class FactChange:
    """A case's fact before and after applying an event. 应用事件前后的案件事实。"""

    case_id: uuid.UUID
    old: dict[str, Any] | None
    new: dict[str, Any]

    @property
    def changed(self) -> bool:
        if self.old is None:
            return True
        return any(_norm(self.old.get(c)) != _norm(self.new.get(c)) for c in _COMPARED)

    @property
    def newly_resolved(self) -> bool:
        """The case got a (new) 办结 time with this event. 本事件产生了新的办结时间。"""
        resolved = self.new.get("resolved_at")
        return resolved is not None and (self.old is None or self.old.get("resolved_at") != resolved)


def _norm(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, tuple):
        return list(value)
    return value


def fact_row(fact: CaseFact, calendar: WorkingCalendar) -> dict[str, Any]:
    """The ``case_facts`` row of a fact, with its durations. 事实行（含时长）。"""
    row: dict[str, Any] = fact.model_dump()
    row["case_id"] = uuid.UUID(fact.case_id)
    row["rejected_by_holder"] = counts_rejection(fact)
    row["hand_dispatches"] = [hand.model_dump(mode="json") for hand in fact.hand_dispatches]
    d = durations(
        calendar,
        reported_at=fact.reported_at,
        dispatched_at=fact.dispatched_at,
        resolved_at=fact.resolved_at,
        closed_at=fact.closed_at,
    )
    row.update(
        handling_natural_h=d.handling_natural_h,
        handling_working_h=d.handling_working_h,
        closing_natural_h=d.closing_natural_h,
        closing_working_h=d.closing_working_h,
        durations_provisional=d.provisional,
    )
    unknown = set(row) - set(case_facts.c.keys())
    assert not unknown, f"CaseFact fields without a column: {unknown}"
    return row


def event_record(row: Any) -> CaseEventRecord:
    """A stored ``case_events`` row (event_id, case_id, type, version, occurred_at, data) as a record."""
    return CaseEventRecord(
        event_id=str(row.event_id),
        case_id=str(row.case_id),
        type=row.type,
        occurred_at=row.occurred_at,
        version=row.version,
        data=row.data,
    )


async def load_fact_row(*, session: AsyncSession, case_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await session.execute(select(case_facts).where(case_facts.c.case_id == case_id))).mappings().first()
    return dict(row) if row is not None else None


async def _lock_case(*, session: AsyncSession, case_id: uuid.UUID) -> None:
    """Serialise recomputations of one case across consumers and replicas. 同一案件串行重算。"""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"metrics:{case_id}"})


async def recompute_fact(*, session: AsyncSession, case_id: uuid.UUID, calendar: WorkingCalendar) -> FactChange | None:
    """Rebuild one case's fact from all its stored events and upsert it. 由全部事件重建事实。"""
    rows = (
        await session.execute(
            select(
                case_events.c.event_id,
                case_events.c.case_id,
                case_events.c.type,
                case_events.c.version,
                case_events.c.occurred_at,
                case_events.c.data,
            ).where(case_events.c.case_id == case_id)
        )
    ).all()
    if not rows:
        return None
    fact = reduce_events(event_record(r) for r in rows)
    new = fact_row(fact, calendar)
    old = await load_fact_row(session=session, case_id=case_id)
    change = FactChange(case_id, old, new)
    if old is None or change.changed:
        values = {**new, "updated_at": func.now()}
        stmt = pg_insert(case_facts).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[case_facts.c.case_id],
            set_={k: stmt.excluded[k] for k in values if k != "case_id"},
        )
        await session.execute(stmt)
    return change


async def apply_event(
    *, session: AsyncSession, record: CaseEventRecord, calendar: WorkingCalendar
) -> FactChange | None:
    """Store one event and refresh its case's fact; ``None`` if the event was already stored.

    存储一条事件并刷新案件事实；已存储过的事件返回 ``None``（不作任何改动）。
    """
    case_id = uuid.UUID(record.case_id)
    await _lock_case(session=session, case_id=case_id)
    inserted = (
        await session.execute(
            pg_insert(case_events)
            .values(
                event_id=uuid.UUID(record.event_id),
                case_id=case_id,
                type=record.type,
                version=record.version,
                occurred_at=record.occurred_at,
                data=record.data,
            )
            .on_conflict_do_nothing(index_elements=[case_events.c.event_id])
            .returning(case_events.c.event_id)
        )
    ).first()
    if inserted is None:
        return None
    return await recompute_fact(session=session, case_id=case_id, calendar=calendar)


#: Take several cases' locks in one round trip, in the (sorted) order given. 一次按序加多个案件锁。
_LOCK_CASES = text(
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM unnest(CAST(:keys AS text[])) AS k"
)


async def apply_events(
    *, session: AsyncSession, records: Sequence[CaseEventRecord], calendar: WorkingCalendar
) -> list[tuple[FactChange, list[CaseEventRecord]]]:
    """Store a batch of events and refresh each touched case's fact once (not once per event).

    批量存储事件，每个涉及的案件只重算一次事实。Returns, per case that got at least one new
    event, its change and the events that were new; events already stored change nothing. The
    same facts as :func:`apply_event` one by one: the fold is order-independent and idempotent.
    """
    if not records:
        return []
    by_case: dict[uuid.UUID, list[CaseEventRecord]] = {}
    for record in records:
        by_case.setdefault(uuid.UUID(record.case_id), []).append(record)
    cases = sorted(by_case)
    await session.execute(_LOCK_CASES, {"keys": [f"metrics:{c}" for c in cases]})
    rows = [
        {
            "event_id": uuid.UUID(r.event_id),
            "case_id": case_id,
            "type": r.type,
            "version": r.version,
            "occurred_at": r.occurred_at,
            "data": r.data,
        }
        for case_id in cases
        for r in by_case[case_id]
    ]
    stmt = pg_insert(case_events).values(rows).on_conflict_do_nothing(index_elements=[case_events.c.event_id])
    inserted = set((await session.execute(stmt.returning(case_events.c.event_id))).scalars().all())
    out: list[tuple[FactChange, list[CaseEventRecord]]] = []
    for case_id in cases:
        fresh = [r for r in by_case[case_id] if uuid.UUID(r.event_id) in inserted]
        if not fresh:
            continue
        change = await recompute_fact(session=session, case_id=case_id, calendar=calendar)
        if change is not None:
            out.append((change, fresh))
    return out


def moments_of(change: FactChange) -> list[datetime]:
    """Dispatch times before and after (the periods the change may touch). 变更涉及的派遣时间。"""
    out: list[datetime] = []
    for row in (change.old, change.new):
        if row is not None and row.get("dispatched_at") is not None:
            out.append(row["dispatched_at"])
    return out
