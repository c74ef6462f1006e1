"""Dispatch throughput: routing + persistence of incident.reported, beside the raw consume floor.

派遣吞吐：事件路由 + 持久化（立案、时间线、发件箱）的每秒事件数，与同一次运行中 aiokafka 裸消费的下限对比。

(a) floor: a raw aiokafka consumer (no group commit work, no database) reading the same N events;
(b) dispatch: the real dispatch app in-process (ConsumerRunner, routing on the demo county 青溪县,
    duplicate check with advisory locks, case + timeline + outbox rows, relay publishing case.events),
    counted until every incident has its case.

Events are 12345 / cityops / grid-worker reports at random points of the county with random mapped
categories (so some merge as duplicates, some go to triage). Fresh Tansu broker and database on this
machine. The grid service is stood in by its response (the demo bundle) over an httpx transport.
Prints figures; asserts nothing. Usage: python bench/dispatch.py [--events 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.dispatch.app import create_app  # noqa: E402
from services.dispatch.settings import DispatchSettings  # noqa: E402
from shared.embedded import MACHINE_POSTGRES, EmbeddedPostgres, TansuBroker, can_connect_async  # noqa: E402
from shared.events import INCIDENT_REPORTED, IncidentReported, make_envelope  # noqa: E402
from shared.kafka import ensure_topics, producer_options  # noqa: E402
from shared.migrations import upgrade  # noqa: E402

DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))


def incidents(n: int, seed: int = 1) -> list[IncidentReported]:
    """N reports at random points of the county (lng 119.0–119.1, lat 29.54–29.62). 随机事件。"""
    rng = random.Random(seed)
    mappings = DEMO["source_mappings"]
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        source = rng.choice(["12345", "cityops", "gridworker"])
        key = rng.choice(list(mappings[source]))
        if rng.random() < 0.02:
            key = "99-99" if source == "cityops" else "UNMAPPED"  # → triage uncategorised
        lng, lat = 119.0 + rng.random() * 0.1, 29.54 + rng.random() * 0.08
        reported = now - timedelta(seconds=rng.randint(0, 86_400))
        out.append(
            IncidentReported.model_validate(
                {
                    "event_id": uuid.uuid4(),
                    "source": source,
                    "source_id": f"B{i:08d}",
                    "reported_at": reported,
                    "received_at": reported,
                    "title": None,
                    "description": "压测事件 bench incident",
                    "category_codes": {"code": key},
                    "category_key": key,
                    "location": {"lng": lng, "lat": lat, "original_crs": "wgs84", "original_lng": lng,
                                 "original_lat": lat},
                    "urgency": rng.choice(["normal", "normal", "normal", "urgent", "critical"]),
                    "reporter_kind": "grid_worker" if source == "gridworker" else "caller",
                    "appeal_type": "complaint" if source == "12345" else None,
                    "grid_code": None,
                    "self_handled": source == "gridworker" and rng.random() < 0.1,
                }
            )
        )  # fmt: skip
    return out


async def produce(bootstrap: str, events: list[IncidentReported]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **producer_options(enable_idempotence=False))
    await producer.start()
    t = time.perf_counter()
    try:
        for i in range(0, len(events), 2000):
            futures = []
            for e in events[i : i + 2000]:
                env = make_envelope(
                    event_type="incident.reported",
                    data=e,
                    source=f"/intake/{e.source}",
                    correlation_id="bench",
                    subject=str(e.event_id),
                    time=e.received_at,
                    event_id=e.event_id,
                )
                futures.append(
                    await producer.send(
                        INCIDENT_REPORTED, key=str(e.event_id).encode(), value=env.to_bytes(), headers=env.headers()
                    )
                )
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(events) / (time.perf_counter() - t)


async def floor_consume(bootstrap: str, n: int) -> float:
    """Raw aiokafka: read N records of incident.reported with a fresh group. 裸消费下限。"""
    consumer = AIOKafkaConsumer(
        INCIDENT_REPORTED,
        bootstrap_servers=bootstrap,
        group_id=f"floor-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
    )
    await consumer.start()
    seen = 0
    t = time.perf_counter()
    try:
        while seen < n:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                seen += len(records)
                for record in records:
                    json.loads(record.value)  # decode like a consumer would
    finally:
        elapsed = time.perf_counter() - t
        await consumer.stop()
    return n / elapsed


async def run(args: argparse.Namespace) -> None:
    server_url = os.environ.get("TEST_DATABASE_URL") or (
        MACHINE_POSTGRES if await can_connect_async(MACHINE_POSTGRES) else ""
    )
    pg = None
    if not server_url:
        pg = EmbeddedPostgres(Path(tempfile.mkdtemp()) / "pg")
        server_url = pg.start()
    admin_dsn = server_url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    head, _, tail = server_url.partition("?")
    db_url = head.rsplit("/", 1)[0] + f"/{name}" + (f"?{tail}" if tail else "")
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    await asyncio.to_thread(upgrade, "dispatch", db_url)
    broker = TansuBroker()
    broker.start()
    try:
        await ensure_topics(broker.bootstrap)
        events = incidents(args.events)
        print(f"dispatch bench: {len(events)} incident.reported events (random points and categories, demo county)")
        rate = await produce(broker.bootstrap, events)
        print(f"  produced to the broker: {rate:,.0f} events/s")
        floor = await floor_consume(broker.bootstrap, len(events))
        print(f"  (a) floor, raw aiokafka consume + JSON decode: {floor:,.0f} events/s")

        def grid(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json=DEMO, headers={"X-Rules-Version": "1"})

        settings = DispatchSettings(
            database_url=db_url,
            kafka_bootstrap_servers=broker.bootstrap,
            log_level="WARNING",
            overdue_sweep_interval_s=0,
            outbox_poll_interval_s=0.05,
            incident_group_id=f"bench-{uuid.uuid4().hex[:6]}",
        )
        app = create_app(settings, grid_transport=httpx.MockTransport(grid))
        conn = await asyncpg.connect(dsn)
        try:
            async with app.router.lifespan_context(app):
                t = time.perf_counter()
                last = 0
                while True:
                    count = await conn.fetchval("SELECT count(*) FROM dispatch.cases")
                    if count >= len(events):
                        break
                    if time.perf_counter() - t > args.timeout:
                        print(f"  timed out with {count} cases")
                        break
                    if count // 10_000 > last // 10_000:
                        print(f"    … {count} cases after {time.perf_counter() - t:.1f} s")
                    last = count
                    await asyncio.sleep(0.5)
                elapsed = time.perf_counter() - t
                print(
                    f"  (b) dispatch, routing + persistence (case, timeline, outbox): "
                    f"{count / elapsed:,.0f} events/s ({elapsed:.1f} s; {count / elapsed / floor:.1%} of the floor)"
                )
                outcomes = await conn.fetch(
                    "SELECT CASE WHEN merged_into IS NOT NULL THEN 'merged' ELSE state END AS outcome, count(*) "
                    "FROM dispatch.cases GROUP BY 1 ORDER BY 2 DESC"
                )
                print("      outcomes: " + ", ".join(f"{r['outcome']} {r['count']}" for r in outcomes))
                rows = await conn.fetchval("SELECT count(*) FROM dispatch.case_transitions")
                unsent = await conn.fetchval("SELECT count(*) FROM dispatch.outbox WHERE sent_at IS NULL")
                print(f"      timeline rows {rows}; outbox rows not yet relayed at that moment {unsent}")
        finally:
            await conn.close()
    finally:
        broker.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if pg is not None:
            pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for dispatch")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
