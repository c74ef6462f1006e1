"""Approvals, alarms and clearings in dispatch's consumer path, on a real PostgreSQL (no broker needed):
a mixed batch is applied exactly once (a replay writes nothing), and a burst batched or one by one
ends the same (the same cases, the same occurrence counts).
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.intake_events import handle_intake_events
from services.intake.alarms import clearing_of
from services.intake.normalise import normalise
from services.intake.schemas import EXAMPLES, SOURCE_MODELS
from shared.calendar import load_calendar
from shared.db import create_engine, session_factory
from shared.events import EventEnvelope, alarm_cleared_event_id, make_envelope
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot

ROOT = Path(__file__).resolve().parents[2]
DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
TYPES = {"approval": "approval.reported", "alarm": "alarm.reported", "gridworker": "incident.reported"}


@pytest.fixture(scope="module")
def loaded() -> LoadedJurisdiction:
    snapshot = JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=1, rules_version=1)
    return LoadedJurisdiction(snapshot, load_calendar(county=snapshot.county_code))


@pytest.fixture
async def engine(own_database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(own_database_url, pool_size=2)
    yield eng
    await eng.dispose()


def envelope(source: str, **changes: Any) -> EventEnvelope[Any]:
    body = {**copy.deepcopy(EXAMPLES[source]), **changes}
    event = normalise(source, SOURCE_MODELS[source].model_validate(body, context={"now": NOW + timedelta(days=1)}),
                      received_at=NOW, phone_salt="s")  # fmt: skip
    return make_envelope(event_type=TYPES[source], data=event, source=f"/intake/{source}", correlation_id="t",
                         subject=str(event.event_id), time=NOW, event_id=event.event_id)  # fmt: skip


def alarm(device: str, minute: int, **changes: Any) -> EventEnvelope[Any]:
    raised = datetime(2026, 11, 24, 7, 0, tzinfo=UTC) + timedelta(minutes=minute)
    return envelope("alarm", alarm_id=f"{device}-{minute}", device_id=device, raised_at=raised.isoformat(), **changes)


def cleared(reported: EventEnvelope[Any], at: datetime) -> EventEnvelope[Any]:
    event = reported.data.model_copy(update={"alarm": reported.data.alarm.model_copy(update={"cleared_at": at})})
    fact = clearing_of(event)
    return make_envelope(event_type="alarm.cleared", data=fact, source="/intake/alarm", correlation_id="t",
                         subject=str(fact.event_id), time=NOW, event_id=alarm_cleared_event_id(fact.event_id))


async def apply(engine: AsyncEngine, loaded: LoadedJurisdiction, batch: list[EventEnvelope[Any]]) -> None:
    async with session_factory(engine)() as session, session.begin():
        await handle_intake_events(session=session, envelopes=batch, jurisdiction=loaded, duplicate_distance_m=50.0,
                                   duplicate_window=timedelta(hours=24))  # fmt: skip


async def state(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT source, kind, state, occurrences, close_reason, device_id FROM dispatch.cases "
            "ORDER BY source, device_id"
        ))).all()  # fmt: skip
        counts = (await conn.execute(text(
            "SELECT (SELECT count(*) FROM dispatch.case_transitions), (SELECT count(*) FROM dispatch.outbox), "
            "(SELECT count(*) FROM dispatch.alarm_occurrences)"
        ))).one()  # fmt: skip
    return {"cases": [tuple(r) for r in rows], "counts": tuple(counts)}


async def test_a_mixed_batch_is_applied_once(engine: AsyncEngine, loaded: LoadedJurisdiction) -> None:
    a1, a2 = alarm("CAM-1", 0), alarm("CAM-1", 5)
    other = alarm("CAM-2", 0, alarm_type="SW-HIGH", device_kind="water_level", confidence=None)
    batch = [
        envelope("gridworker", report_id="GW-MIX-1"),
        a1,
        envelope("approval", approval_no="SP-MIX-1"),
        a2,
        envelope("approval", approval_no="SP-MIX-2", result="denied"),
        other,
        cleared(other, datetime(2026, 11, 24, 7, 20, tzinfo=UTC)),
    ]
    await apply(engine, loaded, batch)
    first = await state(engine)
    # gridworker → one incident; approved → one task, denied → nothing; CAM-1 → one case counted twice;
    # CAM-2 → cleared before acceptance → 自动恢复
    assert [(c[0], c[1], c[3]) for c in first["cases"]] == [
        ("alarm", "incident", 2), ("alarm", "incident", 1), ("approval", "inspection", 1),
        ("gridworker", "incident", 1),
    ]  # fmt: skip
    cam2 = next(c for c in first["cases"] if c[5] == "CAM-2")
    assert (cam2[2], cam2[4]) == ("closed", "自动恢复")
    assert first["counts"][2] == 3  # three alarms recorded
    await apply(engine, loaded, batch)  # replayed: nothing new
    assert await state(engine) == first


async def test_a_burst_batched_or_one_by_one_ends_the_same(engine: AsyncEngine, loaded: LoadedJurisdiction) -> None:
    burst = [alarm(f"CAM-{d}", m) for m in range(0, 40, 4) for d in range(3)]  # 3 devices × 10 alarms
    await apply(engine, loaded, burst)
    batched = (await state(engine))["cases"]
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE dispatch.alarm_occurrences, dispatch.case_transitions, dispatch.cases, "
                                "dispatch.outbox, dispatch.outbox_pending, dispatch.outbox_published"))
    for e in burst:
        await apply(engine, loaded, [e])
    one_by_one = (await state(engine))["cases"]
    assert batched == one_by_one and [c[3] for c in batched] == [10, 10, 10]
