"""联合执法 for 监督问责 in PostgreSQL: the operation events' log, each operation's lapses, and the period's
findings (use cases; keyword-only, never commit). The rules are in :mod:`services.metrics.operations`.

* ``operation_events`` — every consumed ``operation.*`` event 联合执法事件日志 (``ON CONFLICT DO NOTHING``
  on its id), so an operation's lapses are recomputed from all of its events: a replay, a duplicate or
  events out of order give the same rows;
* ``operation_lapses`` — one row per (operation, unit, kind): a unit absent (at the conclusion) or late
  (at its 报到), with the operation's township, lead unit, window and linked cases; replaced whenever
  one of the operation's events arrives. 每次联合执法的迟到/缺席单位，随其事件整体重算。
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Integer, PrimaryKeyConstraint, Table, Text, Uuid, delete, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.accountability import Finding
from services.metrics.models import metadata
from services.metrics.operations import Lapse, OperationEventRecord, fold_operation, operation_findings
from services.metrics.periods import Period

__all__ = ["apply_operation_event", "load_operation_findings", "operation_events", "operation_lapses"]

operation_events = Table(
    "operation_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("operation_id", Uuid, nullable=False),
    Column("type", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("data", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_operation_events_operation_id", operation_events.c.operation_id)

operation_lapses = Table(
    "operation_lapses",
    metadata,
    Column("operation_id", Uuid, nullable=False),
    Column("unit", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("township", Text, nullable=False),
    Column("lead_unit", Text, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("cases", JSONB, nullable=False),
    PrimaryKeyConstraint("operation_id", "unit", "kind"),
)
Index("ix_operation_lapses_at", operation_lapses.c.at)


def _record(r: Any) -> OperationEventRecord:
    """A stored ``operation_events`` row as a record."""
    return OperationEventRecord(
        event_id=str(r.event_id),
        operation_id=str(r.operation_id),
        type=r.type,
        version=r.version,
        occurred_at=r.occurred_at,
        data=r.data,
    )


async def apply_operation_event(*, session: AsyncSession, record: OperationEventRecord) -> list[Lapse]:
    """Store the event (once) and recompute its operation's lapses from all of its events; returns them.
    存储事件（去重）并由该联合执法的全部事件重算迟到/缺席。"""
    operation_id = uuid.UUID(record.operation_id)
    await session.execute(
        pg_insert(operation_events)
        .values(
            event_id=uuid.UUID(record.event_id),
            operation_id=operation_id,
            type=record.type,
            version=record.version,
            occurred_at=record.occurred_at,
            data=dict(record.data),
        )
        .on_conflict_do_nothing(index_elements=[operation_events.c.event_id])
    )
    e = operation_events.c
    rows = (
        await session.execute(
            select(e.event_id, e.operation_id, e.type, e.version, e.occurred_at, e.data).where(
                e.operation_id == operation_id
            )
        )
    ).all()
    lapses = fold_operation(_record(r) for r in rows)
    await session.execute(delete(operation_lapses).where(operation_lapses.c.operation_id == operation_id))
    if lapses:
        await session.execute(
            pg_insert(operation_lapses).values(
                [
                    {
                        "operation_id": operation_id,
                        "unit": x.unit,
                        "kind": x.kind,
                        "at": x.at,
                        "township": x.township,
                        "lead_unit": x.lead_unit,
                        "starts_at": x.starts_at,
                        "ends_at": x.ends_at,
                        "cases": list(x.cases),
                    }
                    for x in lapses
                ]
            )
        )
    return lapses


async def load_operation_findings(
    *, session: AsyncSession, period: Period, as_of: datetime, township: str | None
) -> list[Finding]:
    """The joint-operation findings of ``period`` for ``township`` (None: the county) as of ``as_of``.
    读取本周期（及范围内）的联合执法问责事项。"""
    c = operation_lapses.c
    stmt = select(operation_lapses).where(c.at >= period.start, c.at < period.end, c.at <= as_of)
    if township is not None:
        stmt = stmt.where(c.township == township)
    lapses = [
        Lapse(
            operation_id=str(r.operation_id),
            unit=r.unit,
            kind=r.kind,
            at=r.at,
            township=r.township,
            lead_unit=r.lead_unit,
            starts_at=r.starts_at,
            ends_at=r.ends_at,
            cases=tuple(r.cases),
        )
        for r in (await session.execute(stmt)).all()
    ]
    return operation_findings(lapses, period=period, as_of=as_of)
