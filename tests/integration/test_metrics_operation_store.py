"""联合执法 lapses in PostgreSQL (services.metrics.operation_store): applied once whatever the delivery — the same
events twice, in reverse order, give the same rows — and read back as the period's findings, scoped by township."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text

from services.metrics.operation_store import apply_operation_event, load_operation_findings
from services.metrics.operations import OperationEventRecord
from services.metrics.periods import TZ, parse_period
from shared.db import create_engine, session_factory

NOV = parse_period("2026-11")


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


def operation(township: str) -> list[OperationEventRecord]:
    """Starts 11-10 09:00; A in time (08:30), B late (09:20), C absent at the conclusion (12:00)."""
    op, case = str(uuid.uuid4()), str(uuid.uuid4())
    snap: dict[str, Any] = {
        "state": "open", "township": township, "lead_unit": "A", "units": ["A", "B", "C"],
        "starts_at": t(10, 9).isoformat(), "ends_at": t(10, 11).isoformat(), "cases": [case], "absent": [],
    }  # fmt: skip
    steps: list[tuple[str, datetime, dict[str, Any]]] = [
        ("operation.opened", t(9, 16), {}),
        ("operation.confirmed", t(10, 8, 30), {"unit": "A", "late": False}),
        ("operation.confirmed", t(10, 9, 20), {"unit": "B", "late": True}),
        ("operation.concluded", t(10, 12), {"state": "concluded", "absent": ["C"]}),
    ]
    out = []
    for version, (type_, at, change) in enumerate(steps, start=1):
        snap = {**snap, **{k: v for k, v in change.items() if k in snap}}
        data = {**snap, "unit": change.get("unit"), "late": change.get("late")}
        out.append(OperationEventRecord(str(uuid.uuid4()), op, type_, version, at, data))
    return out


async def test_lapses_are_applied_once_in_any_order_and_read_by_scope(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    sessions = session_factory(engine)
    t1, t2 = operation("T1"), operation("T2")
    try:
        for batch in (t1, list(reversed(t1)), t1[2:], t2):  # once, again reversed, a partial redelivery, T2's
            for record in batch:
                async with sessions() as session, session.begin():
                    await apply_operation_event(session=session, record=record)
        async with sessions() as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT township, unit, kind, at FROM metrics.operation_lapses WHERE operation_id = :o"
                        " ORDER BY kind, unit"
                    ),
                    {"o": uuid.UUID(t1[0].operation_id)},
                )
            ).all()
            assert [tuple(r) for r in rows] == [("T1", "C", "absent", t(10, 12)), ("T1", "B", "late", t(10, 9, 20))]
            stored = await session.scalar(text("SELECT count(*) FROM metrics.operation_events"))
            assert stored == 8  # 4 events of each operation, however often delivered
            county = await load_operation_findings(session=session, period=NOV, as_of=NOV.end, township=None)
            assert sorted((f.kind, f.township, f.unit, f.count) for f in county) == [
                ("operation_absent", "T1", "C", 1), ("operation_absent", "T2", "C", 1),
                ("operation_late", "T1", "B", 1), ("operation_late", "T2", "B", 1),
            ]  # fmt: skip
            t1_only = await load_operation_findings(session=session, period=NOV, as_of=NOV.end, township="T1")
            assert {(f.kind, f.unit, f.operations[0]["operation_id"]) for f in t1_only} == {
                ("operation_absent", "C", t1[0].operation_id), ("operation_late", "B", t1[0].operation_id)
            }  # fmt: skip
            before_conclusion = await load_operation_findings(
                session=session, period=NOV, as_of=t(10, 11), township="T1"
            )
            assert [(f.kind, f.unit) for f in before_conclusion] == [("operation_late", "B")]
    finally:
        await engine.dispose()
