"""Alarm burst: 10,000 监测告警 from 100 devices in one minute, intake → dispatch.

(a) floor, measured in the same run: single 数字城管 POSTs to intake, open loop at the burst's rate;
(b) the burst: 10,000 single alarm POSTs (100 devices, each raising an alarm of one type every ~0.6 s),
    open loop over one minute — intake's 202 latency beside (a);
(c) dispatch consumes them: every alarm is recorded once (``alarm_occurrences``), and the burst ends
    as at most 100 open cases (one per device and type; the rest counted as occurrences).

Everything runs on this machine: a fresh Tansu broker, a fresh database on the machine's PostgreSQL,
intake and dispatch as uvicorn subprocesses, the grid in process with the demo county. Prints figures.
Usage: python bench/alarm_burst.py [--alarms 10000] [--devices 100] [--seconds 60] [--floor-seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatch import serve_in_process, subprocess_service, wait_status  # noqa: E402
from bench.measure import pct, postgres_server, tree_cpu_s  # noqa: E402
from services.grid.app import create_app as create_grid  # noqa: E402
from services.grid.settings import GridSettings  # noqa: E402
from services.intake.schemas import EXAMPLES  # noqa: E402
from shared.embedded import TansuBroker, free_port  # noqa: E402
from shared.messaging.topics import ensure_topics  # noqa: E402
from shared.migrations import upgrade  # noqa: E402

DEMO = (ROOT / "deploy" / "demo" / "county.json").read_bytes()


def alarm(device: int, i: int, raised: datetime) -> bytes:
    body = copy.deepcopy(EXAMPLES["alarm"])
    loc = body["location"]
    body.update(
        alarm_id=f"BURST-{device:03d}-{i:05d}-{uuid.uuid4().hex[:6]}",
        device_id=f"CAM-BENCH-{device:03d}",
        raised_at=raised.isoformat(),
        confidence=0.9,
        location={**loc, "lng": round(loc["lng"] + (device % 10) * 0.0006, 6),
                  "lat": round(loc["lat"] - (device // 10) * 0.0006, 6)},
    )  # fmt: skip
    return orjson.dumps(body)


def cityops(i: int) -> bytes:
    body = copy.deepcopy(EXAMPLES["cityops"])
    body.update(case_no=f"FLOOR-{i:06d}-{uuid.uuid4().hex[:6]}", reported_at=datetime.now(UTC).isoformat())
    return orjson.dumps(body)


async def open_loop(
    client: aiohttp.ClientSession, url: str, key: str, bodies: list[bytes], seconds: float
) -> tuple[list[float], list[int]]:
    """POST ``bodies`` evenly over ``seconds`` (open loop); latencies and non-202 statuses."""
    latencies: list[float] = []
    errors: list[int] = []
    headers = {"X-API-Key": key, "Content-Type": "application/json"}

    async def one(body: bytes) -> None:
        t0 = time.perf_counter()
        async with client.post(url, data=body, headers=headers) as r:
            await r.read()
        latencies.append(time.perf_counter() - t0)
        if r.status != 202:
            errors.append(r.status)

    rate = len(bodies) / seconds
    start = time.perf_counter()
    tasks = []
    for i, body in enumerate(bodies):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(body)))
    await asyncio.gather(*tasks)
    return latencies, errors


def line(name: str, latencies: list[float], errors: list[int], seconds: float) -> str:
    return (
        f"{name}: {len(latencies)} POSTs over {seconds:.0f} s ({len(latencies) / seconds:.0f}/s): "
        f"p50 {statistics.median(latencies) * 1000:6.1f} ms, p99 {pct(latencies, 0.99) * 1000:6.1f} ms; "
        f"non-202: {len(errors)}"
    )


async def run(args: argparse.Namespace) -> None:
    async with postgres_server() as server_url:
        admin = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://"))
        name = f"bench_{uuid.uuid4().hex[:8]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        head, _, tail = server_url.partition("?")
        db_url = head.rsplit("/", 1)[0] + f"/{name}" + (f"?{tail}" if tail else "")
        dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
        broker = TansuBroker()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for service in ("intake", "grid", "dispatch"):
                await asyncio.to_thread(upgrade, service, db_url)
            broker.start()
            await ensure_topics(broker.bootstrap)
            env = {"DATABASE_URL": db_url, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "LOG_LEVEL": "WARNING",
                   "STAFF_TOKENS": "", "INTAKE_API_KEYS": "", "ZHPT_DEV_CREDENTIALS": "true",
                   "INTAKE_OUTBOX_POLL_INTERVAL_S": "0.05"}  # fmt: skip
            grid_port, intake_port, dispatch_port = free_port(), free_port(), free_port()
            grid_app = create_grid(GridSettings(database_url=db_url, kafka_bootstrap_servers=broker.bootstrap,
                                                log_level="WARNING", dev_credentials=True))  # fmt: skip
            intake = subprocess_service("services.intake.app:create_app", intake_port, env)
            dispatch = subprocess_service("services.dispatch.app:create_app", dispatch_port, {
                **env, "DISPATCH_GRID_URL": f"http://127.0.0.1:{grid_port}", "DISPATCH_GRID_TOKEN": "dev-admin",
                "DISPATCH_GRID_RETRY_S": "0.5", "DISPATCH_OVERDUE_SWEEP_INTERVAL_S": "0",
            })  # fmt: skip
            procs = [intake, dispatch]
            async with (
                serve_in_process(grid_app, grid_port),
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=400), timeout=aiohttp.ClientTimeout(total=120)
                ) as client,
            ):
                grid = f"http://127.0.0.1:{grid_port}"
                async with client.put(f"{grid}/v1/jurisdiction", data=DEMO,
                                      headers={"Authorization": "Bearer dev-admin",
                                               "Content-Type": "application/json"}) as r:  # fmt: skip
                    assert r.status == 200, await r.text()
                intake_url = f"http://127.0.0.1:{intake_port}"
                await wait_status(client, f"{intake_url}/healthz")
                await wait_status(client, f"http://127.0.0.1:{dispatch_port}/readyz")
                rate = args.alarms / args.seconds
                print(f"alarm burst bench: {args.alarms} alarms from {args.devices} devices in {args.seconds} s "
                      f"({rate:.0f}/s); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip

                # (a) floor: single cityops POSTs at the same rate
                floor_n = int(rate * args.floor_seconds)
                lat_a, err_a = await open_loop(client, f"{intake_url}/v1/events/cityops", "dev-cityops",
                                               [cityops(i) for i in range(floor_n)], args.floor_seconds)  # fmt: skip
                print("(a) floor, single 数字城管 POSTs, open loop  " + line("", lat_a, err_a, args.floor_seconds))

                # (b) the burst
                start = datetime.now(UTC) - timedelta(seconds=args.seconds + 5)
                bodies = [
                    alarm(i % args.devices, i, start + timedelta(seconds=args.seconds * i / args.alarms))
                    for i in range(args.alarms)
                ]
                cpu0 = tree_cpu_s(intake.pid)
                lat_b, err_b = await open_loop(client, f"{intake_url}/v1/events/alarm", "dev-alarm", bodies,
                                               args.seconds)  # fmt: skip
                cpu = tree_cpu_s(intake.pid) - cpu0
                print("(b) the burst, single 监测告警 POSTs, open loop " + line("", lat_b, err_b, args.seconds)
                      + f"; intake CPU {cpu / args.alarms * 1e6:.0f} µs/alarm")  # fmt: skip
                print(f"    p99 ratio burst / floor = {pct(lat_b, 0.99) / pct(lat_a, 0.99):.2f}")
                accepted = args.alarms - len(err_b)  # a 503 (database busy) is retried by a real producer

                # (c) dispatch: every alarm recorded once; at most one open case per device
                conn = await asyncpg.connect(dsn)
                try:
                    t0 = time.perf_counter()
                    deadline = t0 + args.timeout
                    recorded = 0
                    while time.perf_counter() < deadline:
                        recorded = await conn.fetchval("SELECT count(*) FROM dispatch.alarm_occurrences")
                        if recorded >= accepted:
                            break
                        await asyncio.sleep(0.5)
                    waited = time.perf_counter() - t0
                    row = await conn.fetchrow(
                        "SELECT count(*) AS cases, count(*) FILTER (WHERE state <> 'closed') AS open, "
                        "coalesce(sum(occurrences), 0) AS occurrences, count(DISTINCT device_id) AS devices "
                        "FROM dispatch.cases WHERE source = 'alarm'"
                    )
                finally:
                    await conn.close()
                verdict = "ok" if recorded == accepted and row["open"] <= args.devices else "NOT MET"
                print(f"(c) dispatch: {recorded} of {accepted} accepted alarms recorded ({waited:.0f} s later); "
                      f"{row['cases']} cases ({row['open']} open) for {row['devices']} devices, "
                      f"{row['occurrences']} occurrences counted; ≤ {args.devices} open cases: {verdict}")  # fmt: skip
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
            broker.stop()
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alarms", type=int, default=10_000)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0, help="the burst's length")
    parser.add_argument("--floor-seconds", type=float, default=15.0, help="(a) length")
    parser.add_argument("--timeout", type=float, default=300.0, help="(c) seconds to wait for dispatch")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
