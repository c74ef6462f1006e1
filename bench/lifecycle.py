"""Lifecycle transitions per second through the actions API, 20 concurrent clients, with p50/p99.

闭环处置接口压测：20 个并发客户端通过 ``POST /v1/cases/{id}/actions/{action}`` 推进案件，
统计每秒流转数与 p50/p99 延迟。

Set-up: a fresh database; C cases created through the service (12345 占道经营 in 青溪镇, dispatched
to 青溪镇综合行政执法队); dispatch runs as a uvicorn subprocess on a loopback port (its relay publishes
``case.events`` to a fresh Tansu broker). Each client takes cases from a shared queue and carries
each through accept → resolve → verify (3 transitions, each ``SELECT … FOR UPDATE`` + lifecycle
+ case update + timeline row + outbox row in one transaction). Prints figures; asserts nothing.
Then (``--batch N``, default 500; 0 skips it) as many other cases through the same three
transitions in batches (``POST /v1/cases/actions``, as a history import posts them): the unit's
accepts and results of N/2 cases in one batch, then the dispatcher's N verifications, two batches in
flight. Both modes print transitions/s, each request's p50/p99, and the dispatch process's CPU per
transition, measured in the same run. 再以批量接口推进同样多的案件，与逐个请求并列比较。
Usage: python bench/lifecycle.py [--cases 2000] [--clients 20] [--batch 500]  (cases stand ≥ 87 m apart;
beyond 2000 a spot is used again for a report two days earlier, so none merges; the batch mode takes
another --cases)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncSession

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import pct, tree_cpu_s  # noqa: E402
from services.dispatch.grid_client import LoadedJurisdiction  # noqa: E402
from services.dispatch.incidents import handle_incident  # noqa: E402
from services.dispatch.models import metadata as dispatch_metadata  # noqa: E402
from shared.calendar import load_calendar  # noqa: E402
from shared.db import create_engine, session_factory  # noqa: E402
from shared.embedded import MACHINE_POSTGRES, EmbeddedPostgres, TansuBroker, can_connect_async, free_port  # noqa: E402
from shared.events import CASE_EVENTS, ActorRef, CaseEvent, IncidentReported, make_envelope  # noqa: E402
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot  # noqa: E402
from shared.messaging.outbox import OutboxRelay, add_events  # noqa: E402
from shared.messaging.publisher import KafkaPublisher, producer_options  # noqa: E402
from shared.messaging.topics import ensure_topics  # noqa: E402
from shared.migrations import upgrade  # noqa: E402

DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
UNIT = "330127101-zfd"
TOKENS = {
    "b-unit": {"role": "unit", "township": "330127101", "unit": UNIT},
    "b-disp": {"role": "dispatcher", "township": "*"},
}


async def create_cases(db_url: str, n: int) -> list[str]:
    """N dispatched cases at distinct points of 青溪镇 (no merges). 创建 N 个已派遣案件。"""
    snapshot = JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=1, rules_version=1)
    loaded = LoadedJurisdiction(snapshot, load_calendar(county=snapshot.county_code))
    engine = create_engine(db_url, pool_size=2)
    ids: list[str] = []
    now = datetime.now(UTC)
    try:
        async with session_factory(engine)() as session, session.begin():
            for i in range(n):
                lng, lat = 119.041 + (i % 50) * 0.001, 29.581 + (i // 50 % 40) * 0.0009  # ≥ 87 m apart
                at = now - timedelta(days=2 * (i // 2000))  # a spot used again: two days apart, no merge
                event = IncidentReported.model_validate(
                    {
                        "event_id": uuid.uuid4(),
                        "source": "12345",
                        "source_id": f"L{i:07d}",
                        "reported_at": at,
                        "received_at": at,
                        "description": "压测：桥头占道经营",
                        "category_codes": {"category_code": "010101"},
                        "category_key": "010101",
                        "reporter_kind": "caller",
                        "appeal_type": "complaint",
                        "location": {"lng": lng, "lat": lat, "original_crs": "wgs84", "original_lng": lng,
                                     "original_lat": lat},
                    }
                )  # fmt: skip
                outcome = await handle_incident(
                    session=session, event=event, jurisdiction=loaded, correlation_id="bench"
                )
                ids.append(str(outcome.case_id))
    finally:
        await engine.dispose()
    return ids


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
    await asyncio.to_thread(upgrade, "dispatch", db_url)
    broker = TansuBroker()
    broker.start()
    proc = None
    try:
        await ensure_topics(broker.bootstrap)
        t = time.perf_counter()
        created = await create_cases(db_url, args.cases * (2 if args.batch else 1))
        ids, batch_ids = created[: args.cases], created[args.cases :]
        print(f"lifecycle bench: {len(created)} dispatched cases created in {time.perf_counter() - t:.1f} s")
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "STAFF_TOKENS": json.dumps(TOKENS),
            "SERVICE_TOKEN": "b-disp",
            "LOG_LEVEL": "WARNING",
            "DISPATCH_GRID_URL": "http://127.0.0.1:9",  # no grid: actions need no snapshot
            "DISPATCH_OVERDUE_SWEEP_INTERVAL_S": "0",
            "DISPATCH_DB_POOL_SIZE": str(args.clients),
        }
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurements
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "services.dispatch.app:create_app",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        unit = {"Authorization": "Bearer b-unit"}
        disp = {"Authorization": "Bearer b-disp"}
        steps: list[tuple[str, dict[str, str], dict[str, object]]] = [
            ("accept", unit, {}),
            ("resolve", unit, {"result": "已处置"}),
            ("verify", disp, {"passed": True}),
        ]
        latencies: list[float] = []
        errors: dict[int, int] = {}
        queue: asyncio.Queue[str] = asyncio.Queue()
        for case_id in ids:
            queue.put_nowait(case_id)
        connector = aiohttp.TCPConnector(limit=args.clients * 2)
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{port}", connector=connector, timeout=aiohttp.ClientTimeout(total=60)
        ) as client:
            for _ in range(300):
                try:
                    async with client.get("/healthz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)

            async def worker() -> None:
                while True:
                    try:
                        case_id = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    version = 2
                    for action, headers, body in steps:
                        started = time.perf_counter()
                        async with client.post(
                            f"/v1/cases/{case_id}/actions/{action}",
                            json={**body, "expected_version": version},
                            headers=headers,
                        ) as response:
                            await response.read()
                            latencies.append(time.perf_counter() - started)
                            if response.status != 200:
                                errors[response.status] = errors.get(response.status, 0) + 1
                                break
                        version += 1

            t, cpu = time.perf_counter(), tree_cpu_s(proc.pid)
            await asyncio.gather(*(worker() for _ in range(args.clients)))
            elapsed, cpu = time.perf_counter() - t, tree_cpu_s(proc.pid) - cpu
            ok = len(latencies) - sum(errors.values())
            print(
                f"  one request per action, {args.clients} concurrent clients: {len(latencies)} transitions in "
                f"{elapsed:.1f} s: {ok / elapsed:,.0f} transitions/s, "
                f"dispatch CPU {cpu / max(ok, 1) * 1e6:,.0f} µs each"
            )
            print(
                f"  latency p50 {pct(latencies, 0.5) * 1000:.1f} ms, p99 {pct(latencies, 0.99) * 1000:.1f} ms, "
                f"max {max(latencies) * 1000:.1f} ms; non-200: {errors or 'none'}"
            )
            if args.batch:
                await in_batches(client, batch_ids, args.batch, proc.pid, unit, disp)
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
            proc = None
        await relay_vs_floor(db_url, broker.bootstrap, args.relay_events)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        broker.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if pg is not None:
            pg.stop()


async def in_batches(
    client: aiohttp.ClientSession, ids: list[str], size: int, pid: int, unit: dict[str, str], disp: dict[str, str]
) -> None:
    """``ids`` through accept → resolve → verify in batches of ``size`` items, two batches in flight. 批量推进。"""
    Item = dict[str, object]
    requests: list[tuple[list[Item], dict[str, str]]] = []
    half = max(size // 2, 1)
    for start in range(0, len(ids), half):
        chunk = ids[start : start + half]
        items: list[Item] = [{"case_id": c, "action": "accept", "body": {"expected_version": 2}} for c in chunk]
        items += [
            {"case_id": c, "action": "resolve", "body": {"expected_version": 3, "result": "已处置"}} for c in chunk
        ]
        requests.append((items, unit))
    verifies: list[Item] = [
        {"case_id": c, "action": "verify", "body": {"expected_version": 4, "passed": True}} for c in ids
    ]
    requests += [(verifies[i : i + size], disp) for i in range(0, len(verifies), size)]
    latencies: list[float] = []
    applied = refused = 0

    async def post(items: list[dict[str, object]], headers: dict[str, str]) -> None:
        nonlocal applied, refused
        started = time.perf_counter()
        async with client.post("/v1/cases/actions", json={"items": items}, headers=headers) as response:
            answer = await response.json()
            latencies.append(time.perf_counter() - started)
            assert response.status == 200, answer
            applied += answer["applied"]
            refused += answer["refused"]

    async def worker(mine: list[tuple[list[dict[str, object]], dict[str, str]]]) -> None:
        for items, headers in mine:
            await post(items, headers)

    units, verifying = [r for r in requests if r[1] is unit], [r for r in requests if r[1] is disp]
    t, cpu = time.perf_counter(), tree_cpu_s(pid)
    await asyncio.gather(worker(units[0::2]), worker(units[1::2]))  # every result before its verification
    await asyncio.gather(worker(verifying[0::2]), worker(verifying[1::2]))
    elapsed, cpu = time.perf_counter() - t, tree_cpu_s(pid) - cpu
    print(
        f"  in batches of {size} (POST /v1/cases/actions, two in flight): {applied:,} transitions in {elapsed:.1f} s: "
        f"{applied / elapsed:,.0f} transitions/s, dispatch CPU {cpu / max(applied, 1) * 1e6:,.0f} µs each; "
        f"refused {refused}"
    )
    print(f"  batch latency p50 {pct(latencies, 0.5) * 1000:.0f} ms, p99 {pct(latencies, 0.99) * 1000:.0f} ms")


async def relay_vs_floor(db_url: str, bootstrap: str, n: int) -> None:
    """The outbox relay draining ``n`` case events, beside raw aiokafka producing the same values."""
    engine = create_engine(db_url)
    table = dispatch_metadata.tables["dispatch.outbox"]
    now = datetime.now(UTC)
    envelopes = [
        make_envelope(
            event_type="case.accepted",
            data=CaseEvent(
                case_id=uuid.uuid4(),
                version=3,
                occurred_at=now,
                actor=ActorRef(role="unit", unit="u"),
                state="accepted",
                township="330127101",
                unit="330127101-zfd",
                matter="SR001",
                source="12345",
            ),
            source="/bench",
            correlation_id="bench",
            subject=None,
            time=now,
        )
        for _ in range(n)
    ]
    for env in envelopes:
        env.subject = str(env.data.case_id)
    # floor: raw aiokafka, same producer settings, same values
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **producer_options(enable_idempotence=False))
    await producer.start()
    t = time.perf_counter()
    for i in range(0, n, 1000):
        futures = [
            await producer.send(CASE_EVENTS, key=(e.subject or "").encode(), value=e.to_bytes(), headers=e.headers())
            for e in envelopes[i : i + 1000]
        ]
        await asyncio.gather(*futures)
    floor = n / (time.perf_counter() - t)
    await producer.stop()
    async with engine.begin() as conn:
        await conn.execute(table.delete())  # leftovers of the lifecycle run: only the new events are relayed
    async with AsyncSession(engine) as session, session.begin():
        for i in range(0, n, 1000):
            await add_events(session, table, CASE_EVENTS, envelopes[i : i + 1000])
    publisher = KafkaPublisher(bootstrap=bootstrap, client_id="bench-relay")
    relay = OutboxRelay(engine=engine, table=table, publisher=publisher, batch_size=1000)
    t = time.perf_counter()
    while await relay.relay_once():
        pass
    rate = n / (time.perf_counter() - t)
    await publisher.stop()
    await engine.dispose()
    print(
        f"outbox relay: {rate:,.0f} events/s; floor raw aiokafka produce (same settings): {floor:,.0f} events/s; "
        f"ratio {rate / floor:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500, help="items per batch in the batch mode (0: skip it)")
    parser.add_argument("--relay-events", type=int, default=20_000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
