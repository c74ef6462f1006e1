"""Batched incident handling (handle_incidents) against real PostgreSQL: the same result as one by one.

批量立案与逐条立案结果一致（真实 PostgreSQL）：批内并案、重放幂等、确定性 id。
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.identity import case_id_for
from services.dispatch.incidents import IncidentOutcome, handle_incident, handle_incidents
from shared.calendar import load_calendar
from shared.db import create_engine, session_factory
from shared.events import EventEnvelope, IncidentReported, make_envelope
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot

ROOT = Path(__file__).resolve().parents[2]
DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
#: A spot in 白沙街道 and a few categories: reports crowd within merge distance. 报告密集的地点与类别。
SPOT = (119.0702, 29.5901)
KEYS = {"12345": ["010101", "010102"], "cityops": ["01-01", "01-02"], "gridworker": ["GW-SR-01"]}


@pytest.fixture(scope="module")
def loaded() -> LoadedJurisdiction:
    snapshot = JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=1, rules_version=1)
    return LoadedJurisdiction(snapshot, load_calendar(county=snapshot.county_code))


@pytest.fixture
async def engine(own_database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(own_database_url, pool_size=2)
    yield eng
    await eng.dispose()


def incident(
    rng: random.Random, i: int, *, spread_m: float = 120.0, phones: Sequence[str] = ("p1", "p2", "p3")
) -> IncidentReported:
    """A report within ``spread_m`` of :data:`SPOT` (some sources / categories / callers shared). 密集报告。"""
    source = rng.choice(["12345", "12345", "cityops", "gridworker"])
    key = rng.choice(KEYS[source])
    if rng.random() < 0.05:
        key = "UNMAPPED"  # → triage uncategorised (no matter: never checked, may be a caller's candidate)
    dx, dy = (rng.uniform(-spread_m, spread_m) for _ in range(2))
    lng, lat = SPOT[0] + dx / 96_800, SPOT[1] + dy / 111_320
    reported = NOW - timedelta(hours=rng.uniform(0, 30))  # some outside the 24 h window of each other
    return IncidentReported.model_validate(
        {
            "event_id": uuid.uuid5(uuid.NAMESPACE_URL, f"batch-test-{rng.random()}-{i}"),
            "source": source,
            "source_id": f"BT{i:05d}",
            "reported_at": reported,
            "received_at": reported,
            "description": "批量测试 batch test",
            "category_codes": {"code": key},
            "category_key": key,
            "location": {"lng": lng, "lat": lat, "original_crs": "wgs84", "original_lng": lng, "original_lat": lat},
            "urgency": rng.choice(["normal", "urgent"]),
            "reporter_kind": "grid_worker" if source == "gridworker" else "caller",
            "caller": {"phone_hash": rng.choice(phones)} if source == "12345" else None,
            "worker_id": "GW330127001001" if source == "gridworker" else None,
            "self_handled": source == "gridworker" and rng.random() < 0.2,
        }
    )


def envelope(event: IncidentReported) -> EventEnvelope[Any]:
    return make_envelope(
        event_type="incident.reported",
        data=event,
        source=f"/intake/{event.source}",
        correlation_id="t",
        subject=str(event.event_id),
        time=event.received_at,
        event_id=event.event_id,
    )


async def state(engine: AsyncEngine) -> dict[str, list[Any]]:
    """Everything dispatch wrote, in write order, without generated columns. 写入的全部内容（按写入顺序）。"""
    queries = {
        "cases": "SELECT to_jsonb(c) - 'seq' - 'created_at' - 'updated_at' FROM dispatch.cases c ORDER BY seq",
        "timeline": "SELECT to_jsonb(t) - 'id' - 'recorded_at' FROM dispatch.case_transitions t ORDER BY id",
        "outbox": "SELECT event_id, topic, event_type, key, value, headers FROM dispatch.outbox ORDER BY id",
    }
    async with engine.connect() as conn:
        return {name: [tuple(r) for r in await conn.execute(text(q))] for name, q in queries.items()}


async def wipe(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE dispatch.case_transitions, dispatch.cases, dispatch.outbox, "
                                "dispatch.outbox_pending, dispatch.outbox_published"))


async def one_by_one(engine: AsyncEngine, loaded: LoadedJurisdiction, events: list[IncidentReported]) -> list[Any]:
    outcomes = []
    sessions = session_factory(engine)
    for event in events:
        async with sessions() as session, session.begin():
            outcomes.append(
                await handle_incident(session=session, event=event, jurisdiction=loaded, correlation_id="t")
            )
    return outcomes


async def batched(
    engine: AsyncEngine, loaded: LoadedJurisdiction, events: list[IncidentReported], size: int
) -> list[IncidentOutcome]:
    outcomes: list[IncidentOutcome] = []
    sessions = session_factory(engine)
    for i in range(0, len(events), size):
        async with sessions() as session, session.begin():
            outcomes += await handle_incidents(
                session=session, envelopes=[envelope(e) for e in events[i : i + size]], jurisdiction=loaded
            )
    return outcomes


async def test_batches_write_exactly_what_one_by_one_writes(engine: AsyncEngine, loaded: LoadedJurisdiction) -> None:
    """Crowded reports (nearby merges, repeat callers, triage, self-handled, out-of-window pairs), one by one
    and then in batches of 37: the same cases, timeline, outbox bytes and write order.

    密集报告逐条处理与按 37 条一批处理：案件、时间线、发件箱字节与写入顺序完全一致。"""
    rng = random.Random(11)
    events = [incident(rng, i) for i in range(300)]
    expected_outcomes = await one_by_one(engine, loaded, events)
    expected = await state(engine)
    await wipe(engine)
    outcomes = await batched(engine, loaded, events, 37)
    assert outcomes == expected_outcomes
    assert await state(engine) == expected
    kinds = {o.outcome for o in outcomes}
    assert {"dispatch", "merged", "triage", "self_handled"} <= kinds, kinds
    explanations = [c[0]["explanation"] for c in expected["cases"] if c[0]["merged_into"]]
    assert {e["duplicate"]["reason"] for e in explanations} == {"nearby", "repeat_caller"}
    # merged into a case of the same batch (not yet in the database when the batch started) 并入同批案件
    index = {o.case_id: i for i, o in enumerate(outcomes)}
    assert any(o.merged_into and index[o.merged_into] // 37 == i // 37 for i, o in enumerate(outcomes))


async def test_two_reports_of_one_spot_in_one_batch(engine: AsyncEngine, loaded: LoadedJurisdiction) -> None:
    rng = random.Random(3)
    first = incident(rng, 1).model_copy(update={"source": "cityops", "category_key": "01-01", "caller": None})
    second = first.model_copy(update={"event_id": uuid.uuid4(), "source_id": "BT-second"})
    third = first.model_copy(update={"event_id": uuid.uuid4(), "source_id": "BT-third"})
    async with session_factory(engine)() as session, session.begin():
        one, two, again = await handle_incidents(
            session=session, envelopes=[envelope(first), envelope(second), envelope(first)], jurisdiction=loaded,
        )  # fmt: skip
    assert (one.status, one.outcome, one.merged_into) == ("created", "dispatch", None)
    assert (two.status, two.outcome, two.merged_into) == ("created", "merged", case_id_for(first.event_id))
    assert again == IncidentOutcome(case_id=case_id_for(first.event_id), status="exists")
    # replay of the whole batch (and a new report of the spot): nothing new but the new report, merged
    before = await state(engine)
    async with session_factory(engine)() as session, session.begin():
        replay = await handle_incidents(
            session=session, envelopes=[envelope(first), envelope(second), envelope(third)], jurisdiction=loaded,
        )  # fmt: skip
    assert [o.status for o in replay] == ["exists", "exists", "created"]
    assert replay[2].merged_into == case_id_for(first.event_id)
    after = await state(engine)
    assert after["cases"][:2] == before["cases"] and len(after["cases"]) == 3
    assert after["outbox"][: len(before["outbox"])] == before["outbox"]


async def test_empty_batch_writes_nothing(engine: AsyncEngine, loaded: LoadedJurisdiction) -> None:
    async with session_factory(engine)() as session, session.begin():
        assert await handle_incidents(session=session, envelopes=[], jurisdiction=loaded) == []
    assert await state(engine) == {"cases": [], "timeline": [], "outbox": []}


async def test_a_replayed_month_writes_the_same_bytes_whenever_it_is_replayed(
    engine: AsyncEngine, loaded: LoadedJurisdiction
) -> None:
    """A month of reports (November 2026, received a few minutes after they were made) routed once,
    then replayed into an empty database: the same cases, timeline and outbox bytes (so the same
    metrics facts and scores). The dispatch time is the event's, not the processing clock's: each
    case is dispatched when intake received it, whenever dispatch gets to it.

    一个月的事件在两个不同时间重放进空库：案件、时间线、发件箱字节完全一致；派遣时间取自事件。"""
    rng = random.Random(30)
    month_start = datetime(2026, 11, 1, tzinfo=UTC)
    events = []
    for i in range(240):
        event = incident(rng, i, spread_m=2_000)
        reported = month_start + timedelta(minutes=rng.randrange(30 * 24 * 60))
        events.append(event.model_copy(update={"reported_at": reported,
                                               "received_at": reported + timedelta(minutes=rng.randrange(1, 15))}))
    events.sort(key=lambda e: e.received_at)
    await batched(engine, loaded, events, 50)
    first = await state(engine)
    async with engine.connect() as conn:
        times = {r.incident_id: r.dispatched_at for r in await conn.execute(
            text("SELECT incident_id, dispatched_at FROM dispatch.cases WHERE dispatched_at IS NOT NULL"))}
    assert times, "some reports were dispatched"
    received = {e.event_id: e.received_at for e in events}
    assert all(at == received[incident_id] for incident_id, at in times.items())

    await wipe(engine)
    await batched(engine, loaded, events, 50)
    assert await state(engine) == first
