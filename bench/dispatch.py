"""Dispatch throughput and latency, beside the raw consume floor measured in the same run.

派遣吞吐与时延：与同一次运行中 aiokafka 裸消费的下限对比。

(a) floor: a raw aiokafka consumer (no group commit work, no database) reading the same N events;
(b) throughput: the real dispatch app in-process (ConsumerRunner with the batch handler, routing on
    the demo county 青溪县, duplicate check under advisory locks, case + timeline + outbox rows,
    relay publishing case.events), from the first committed case until every incident has its
    case; printed as events/s and as a ratio to (a) (aim ≥ 2 000 events/s);
(c) latency: intake and dispatch as uvicorn subprocesses on real ports, the real grid service
    in-process on a real port (demo county imported); cityops records POSTed to intake at a steady
    rate (default 100/s for 30 s, aiohttp, open loop) and ``case.events`` read with aiokafka: time
    from intake's 202 answer to the incident's ``case.dispatched`` arriving, p50 / p99 (aim p99 < 250 ms).

Events of (b) are 12345 / cityops / grid-worker reports at random points of the county with random
mapped categories (so some merge as duplicates, some go to triage). Fresh Tansu broker and database
on this machine. In (b) the grid service is stood in by its response (the demo bundle) over an httpx
transport. Prints figures; asserts nothing.
Usage: python bench/dispatch.py [--events 100000] [--rate 100] [--seconds 30] [--skip-throughput] [--skip-latency]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import orjson
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import pct  # noqa: E402
from services.dispatch.app import create_app  # noqa: E402
from services.dispatch.settings import DispatchSettings  # noqa: E402
from services.grid.app import create_app as create_grid  # noqa: E402
from services.grid.settings import GridSettings  # noqa: E402
from services.intake.schemas import EXAMPLES  # noqa: E402
from shared.embedded import MACHINE_POSTGRES, EmbeddedPostgres, TansuBroker, can_connect_async, free_port  # noqa: E402
from shared.events import CASE_EVENTS, INCIDENT_REPORTED, IncidentReported, make_envelope  # noqa: E402
from shared.messaging.publisher import producer_options  # noqa: E402
from shared.messaging.topics import ensure_topics  # noqa: E402
from shared.migrations import upgrade  # noqa: E402

DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
#: Where the random reports fall (the demo county's built-up area). 随机报告的范围。
AREA = (119.0, 29.54, 119.1, 29.62)


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
        lng, lat = AREA[0] + rng.random() * (AREA[2] - AREA[0]), AREA[1] + rng.random() * (AREA[3] - AREA[1])
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


async def throughput(args: argparse.Namespace, db_url: str, dsn: str, bootstrap: str) -> None:
    """(a) and (b). 裸消费下限与派遣吞吐。"""
    events = incidents(args.events)
    print(f"dispatch bench: {len(events)} incident.reported events (random points and categories, demo county)")
    rate = await produce(bootstrap, events)
    print(f"  produced to the broker: {rate:,.0f} events/s")
    floor = await floor_consume(bootstrap, len(events))
    print(f"  (a) floor, raw aiokafka consume + JSON decode: {floor:,.0f} events/s")

    def grid(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=DEMO, headers={"X-Rules-Version": "1"})

    settings = DispatchSettings(
        database_url=db_url,
        kafka_bootstrap_servers=bootstrap,
        log_level="WARNING",
        overdue_sweep_interval_s=0,
        incident_group_id=f"bench-{uuid.uuid4().hex[:6]}",
        dev_credentials=True,
    )
    app = create_app(settings, grid_transport=httpx.MockTransport(grid))
    conn = await asyncpg.connect(dsn)
    try:
        async with app.router.lifespan_context(app):
            started = time.perf_counter()
            while True:
                first = await conn.fetchval("SELECT count(*) FROM dispatch.cases")
                if first:
                    break
                await asyncio.sleep(0.01)
            t = time.perf_counter()
            cpu = time.process_time()
            print(f"    first cases committed {t - started:.1f} s after start (snapshot load, group join)")
            count, last = first, first
            while count < len(events):
                if time.perf_counter() - t > args.timeout:
                    print(f"  timed out with {count} cases")
                    break
                await asyncio.sleep(0.2)
                count = await conn.fetchval("SELECT count(*) FROM dispatch.cases")
                if count // 20_000 > last // 20_000:
                    print(f"    … {count} cases after {time.perf_counter() - t:.1f} s")
                last = count
            elapsed = time.perf_counter() - t
            cpu = time.process_time() - cpu
            b_rate = (count - first) / elapsed
            print(
                f"  (b) dispatch, incident.reported → committed cases (routing, duplicate check, case, timeline, "
                f"outbox): {b_rate:,.0f} events/s ({count - first} cases in {elapsed:.1f} s)"
            )
            print(f"      ratio (b) / floor (a) = {b_rate / floor:.3f}  (aim ≥ 2 000 events/s)")
            print(
                f"      this process's CPU meanwhile (consumer, relay, bench polling; all threads): "
                f"{cpu / max(1, count - first) * 1e6:.0f} µs per case ({cpu / elapsed:.0%} of one core)"
            )
            outcomes = await conn.fetch(
                "SELECT CASE WHEN merged_into IS NOT NULL THEN 'merged' ELSE state END AS outcome, count(*) "
                "FROM dispatch.cases GROUP BY 1 ORDER BY 2 DESC"
            )
            print("      outcomes: " + ", ".join(f"{r['outcome']} {r['count']}" for r in outcomes))
            rows = await conn.fetchval("SELECT count(*) FROM dispatch.case_transitions")
            unsent = await conn.fetchval("SELECT count(*) FROM dispatch.outbox_pending")
            print(f"      timeline rows {rows}; outbox rows not yet relayed at that moment {unsent}")
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def serve_in_process(app: Any, port: int) -> AsyncIterator[None]:
    """Run an ASGI app on 127.0.0.1:``port`` in this event loop (lifespan included). 进程内真实端口服务。"""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield
    finally:
        server.should_exit = True
        await task


def subprocess_service(factory: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", factory, "--port", str(port), "--no-access-log",
         "--log-level", "warning"],
        cwd=ROOT,
        env={**os.environ, **env},
    )  # fmt: skip


async def wait_status(client: aiohttp.ClientSession, url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError):
            async with client.get(url) as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout_s} s")


def cityops_record(rng: random.Random, i: int) -> dict[str, Any]:
    """A cityops 案卷 at a random point of the area, random mapped category. 随机位置与类别的数字城管案卷。"""
    body = copy.deepcopy(EXAMPLES["cityops"])
    major, minor = rng.choice(list(DEMO["source_mappings"]["cityops"])).split("-")
    lng, lat = AREA[0] + rng.random() * (AREA[2] - AREA[0]), AREA[1] + rng.random() * (AREA[3] - AREA[1])
    body.update(
        case_no=f"LAT{uuid.uuid4().hex[:8]}{i:06d}",
        reported_at=datetime.now(UTC).isoformat(),
        major_code=major,
        minor_code=minor,
        location={"lng": round(lng, 6), "lat": round(lat, 6), "crs": "cgcs2000"},
    )
    body.pop("cell_code", None)  # placed by the point 按坐标定位
    return body


async def latency(args: argparse.Namespace, db_url: str, bootstrap: str) -> None:
    """(c) intake 202 → ``case.dispatched`` on case.events. 受理 202 至案件派遣事件到达的时延。"""
    env = {
        "DATABASE_URL": db_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "LOG_LEVEL": "WARNING",
        "STAFF_TOKENS": "",
        "ZHPT_DEV_CREDENTIALS": "true",
    }
    grid_port, intake_port, dispatch_port = free_port(), free_port(), free_port()
    grid_app = create_grid(
        GridSettings(database_url=db_url, kafka_bootstrap_servers=bootstrap, log_level="WARNING", dev_credentials=True)
    )
    intake = subprocess_service("services.intake.app:create_app", intake_port, env)
    dispatch = subprocess_service(
        "services.dispatch.app:create_app",
        dispatch_port,
        {
            **env,
            "DISPATCH_GRID_URL": f"http://127.0.0.1:{grid_port}",
            "DISPATCH_GRID_TOKEN": "dev-admin",
            "DISPATCH_GRID_RETRY_S": "0.5",
            "DISPATCH_OVERDUE_SWEEP_INTERVAL_S": "0",
            "DISPATCH_INCIDENT_GROUP_ID": f"bench-latency-{uuid.uuid4().hex[:6]}",
        },
    )
    arrivals: dict[tuple[str, str], float] = {}  # (incident id, event type) → first arrival 首次到达时间
    seen: dict[str, str] = {}  # incident id → type of its first case event 首个案件事件类型
    consumer = AIOKafkaConsumer(
        CASE_EVENTS, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="latest", metadata_max_age_ms=1000, fetch_max_wait_ms=10,
    )  # fmt: skip
    stop = asyncio.Event()

    async def read_case_events() -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    value = orjson.loads(record.value)
                    incident = value["data"].get("incident_id")
                    if incident:
                        arrivals.setdefault((incident, value["type"]), now)
                        seen.setdefault(incident, value["type"])

    try:
        async with (
            serve_in_process(grid_app, grid_port),
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as client,
        ):
            async with client.put(
                f"http://127.0.0.1:{grid_port}/v1/jurisdiction",
                data=json.dumps(DEMO).encode(),
                headers={"Authorization": "Bearer dev-admin", "Content-Type": "application/json"},
            ) as imported:
                assert imported.status == 200, await imported.text()
            await wait_status(client, f"http://127.0.0.1:{intake_port}/healthz")
            await wait_status(client, f"http://127.0.0.1:{dispatch_port}/readyz")
            await consumer.start()
            await consumer.seek_to_end()
            reader = asyncio.create_task(read_case_events())
            rng = random.Random(7)
            # Warm-up until cases come out (the incident consumer joins its group after the snapshot
            # load; connections, prepared statements). 预热：直到案件事件开始到达。
            warm: list[str] = []
            deadline = time.perf_counter() + 60
            while time.perf_counter() < deadline:
                async with client.post(
                    f"http://127.0.0.1:{intake_port}/v1/events/cityops",
                    data=orjson.dumps(cityops_record(rng, len(warm))),
                    headers={"X-API-Key": "dev-cityops", "Content-Type": "application/json"},
                ) as r:
                    warm.append((await r.json())["event_id"])
                if len(warm) >= 20 and all(i in seen for i in warm[-10:]):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            total = args.rate * args.seconds
            bodies = [cityops_record(rng, i) for i in range(total)]
            accepted: dict[str, float] = {}
            post_latency: list[float] = []
            errors: list[int] = []

            async def one(body: dict[str, Any]) -> None:
                t0 = time.perf_counter()
                async with client.post(
                    f"http://127.0.0.1:{intake_port}/v1/events/cityops",
                    data=orjson.dumps(body),
                    headers={"X-API-Key": "dev-cityops", "Content-Type": "application/json"},
                ) as r:
                    answer = await r.json()
                t1 = time.perf_counter()
                post_latency.append(t1 - t0)
                if r.status != 202:
                    errors.append(r.status)
                    return
                accepted[answer["event_id"]] = t1

            print(
                f"dispatch latency bench: {args.rate} cityops records/s for {args.seconds} s into intake "
                "(uvicorn), dispatch (uvicorn), grid (in-process, real port)"
            )
            start = time.perf_counter()
            tasks = []
            for i, body in enumerate(bodies):
                delay = start + i / args.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(body)))
            await asyncio.gather(*tasks)
            achieved = total / (time.perf_counter() - start)
            deadline = time.perf_counter() + 30
            while time.perf_counter() < deadline:
                if all(i in seen for i in accepted):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            stop.set()
            await reader
            dispatched = [
                arrivals[(i, "case.dispatched")] - t for i, t in accepted.items() if (i, "case.dispatched") in arrivals
            ]
            others: dict[str, int] = {}
            for incident_id in accepted:
                if (incident_id, "case.dispatched") not in arrivals:
                    kind = seen.get(incident_id, "nothing within 30 s")
                    others[kind] = others.get(kind, 0) + 1
            print(
                f"  (c) intake POST → 202 (achieved {achieved:.0f}/s): p50 {statistics.median(post_latency) * 1000:.1f}"
                f" ms, p99 {pct(post_latency, 0.99) * 1000:.1f} ms; non-202 answers: {len(errors)}"
            )
            if dispatched:
                print(
                    f"  (c) intake 202 → case.dispatched on case.events: p50 {statistics.median(dispatched) * 1000:.1f}"
                    f" ms, p90 {pct(dispatched, 0.90) * 1000:.1f} ms, p99 {pct(dispatched, 0.99) * 1000:.1f} ms, "
                    f"max {max(dispatched) * 1000:.1f} ms over {len(dispatched)} incidents  (aim p99 < 250 ms)"
                )
            print("      not dispatched: " + (", ".join(f"{k} {v}" for k, v in sorted(others.items())) or "none"))
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await consumer.stop()
        for proc in (intake, dispatch):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


async def run(args: argparse.Namespace) -> None:
    server_url = os.environ.get("TEST_DATABASE_URL") or (
        MACHINE_POSTGRES if await can_connect_async(MACHINE_POSTGRES) else ""
    )
    pg = None
    if not server_url:
        pg = EmbeddedPostgres(Path(tempfile.mkdtemp()) / "pg")
        server_url = pg.start()
    admin_dsn = server_url.replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(admin_dsn)
    names: list[str] = []

    async def database(services: tuple[str, ...]) -> tuple[str, str]:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        names.append(name)
        await admin.execute(f'CREATE DATABASE "{name}"')
        head, _, tail = server_url.partition("?")
        db_url = head.rsplit("/", 1)[0] + f"/{name}" + (f"?{tail}" if tail else "")
        for service in services:
            await asyncio.to_thread(upgrade, service, db_url)
        return db_url, db_url.replace("postgresql+asyncpg://", "postgresql://")

    try:
        # A fresh broker and database per part: (c) must not find (b)'s backlog on incident.reported.
        # 每部分用新的代理与数据库：(c) 不应读到 (b) 留在主题上的积压。
        if not args.skip_throughput:
            db_url, dsn = await database(("dispatch",))
            with running_broker() as bootstrap:
                await ensure_topics(bootstrap)
                await throughput(args, db_url, dsn, bootstrap)
        if not args.skip_latency:
            db_url, _ = await database(("intake", "grid", "dispatch"))
            with running_broker() as bootstrap:
                await ensure_topics(bootstrap)
                await latency(args, db_url, bootstrap)
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if pg is not None:
            pg.stop()


@contextlib.contextmanager
def running_broker() -> Iterator[str]:
    """A fresh Tansu broker; yields its bootstrap address. 新的 Tansu 代理。"""
    broker = TansuBroker()
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="(b) incidents")
    parser.add_argument("--timeout", type=float, default=1800.0, help="(b) seconds to wait for dispatch")
    parser.add_argument("--rate", type=int, default=100, help="(c) records per second into intake")
    parser.add_argument("--seconds", type=int, default=30, help="(c) how long")
    parser.add_argument("--skip-throughput", action="store_true", help="only (c)")
    parser.add_argument("--skip-latency", action="store_true", help="only (a) and (b)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
