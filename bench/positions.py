"""Terminal positions ingested per second through ``POST /v1/forces/positions`` (batched), beside a raw
asyncpg insert of the same rows (the floor), in the same run.

终端位置批量上报压测：经接口每秒入库的位置数，与同次运行中用 asyncpg 直接插入相同行的下限对照。

Set-up: a fresh database (dispatch migrated), a Tansu broker; dispatch as a uvicorn subprocess on a
loopback port (no grid: the admin terminal gateway's posts need no snapshot). ``--clients`` clients
post batches of ``--batch`` positions of 2,000 members in GCJ-02 (each converted to WGS-84, appended
to the track and the latest per member upserted, one transaction per batch). The floor inserts the
same rows into the track table, one ``unnest`` insert per batch from as many asyncpg connections.
Prints figures; asserts nothing.
Usage: python bench/positions.py [--positions 200000] [--batch 1000] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import pct, postgres_server, tree_cpu_s  # noqa: E402
from shared.embedded import TansuBroker, free_port  # noqa: E402
from shared.migrations import upgrade  # noqa: E402

MEMBERS = 2_000
TOKENS = {"b-admin": {"role": "admin", "township": "*"}}


def batches(total: int, size: int) -> list[list[dict[str, object]]]:
    now = datetime.now(UTC)
    out: list[list[dict[str, object]]] = []
    for start in range(0, total, size):
        out.append(
            [
                {
                    "member_id": f"m{i % MEMBERS:05d}",
                    "at": (now - timedelta(seconds=(total - i) / 100)).isoformat(),
                    "lng": 119.05 + (i % 97) * 0.0003,
                    "lat": 29.6 + (i % 89) * 0.0003,
                    "crs": "gcj02",
                }
                for i in range(start, min(total, start + size))
            ]
        )
    return out


async def through_api(port: int, work: list[list[dict[str, object]]], clients: int) -> tuple[float, list[float]]:
    queue: asyncio.Queue[list[dict[str, object]]] = asyncio.Queue()
    for b in work:
        queue.put_nowait(b)
    latencies: list[float] = []
    headers = {"Authorization": "Bearer b-admin"}
    async with aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{port}", timeout=aiohttp.ClientTimeout(total=120)
    ) as client:
        for _ in range(300):
            try:
                async with client.get("/healthz") as ready:
                    if ready.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)

        async def worker() -> None:
            while not queue.empty():
                batch = queue.get_nowait()
                started = time.perf_counter()
                async with client.post("/v1/forces/positions", json={"positions": batch}, headers=headers) as r:
                    body = await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}: {body[:200]!r}")
                latencies.append(time.perf_counter() - started)

        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - t, latencies


async def floor(dsn: str, work: list[list[dict[str, object]]], clients: int) -> float:
    rows = [
        ([str(p["member_id"]) for p in b], [datetime.fromisoformat(str(p["at"])) for p in b],
         [float(p["lng"]) for p in b], [float(p["lat"]) for p in b])  # type: ignore[arg-type]
        for b in work
    ]  # fmt: skip
    queue: asyncio.Queue[tuple[list[str], list[datetime], list[float], list[float]]] = asyncio.Queue()
    for r in rows:
        queue.put_nowait(r)
    conns = [await asyncpg.connect(dsn) for _ in range(clients)]

    async def worker(conn: asyncpg.Connection) -> None:
        while not queue.empty():
            m, t, x, y = queue.get_nowait()
            await conn.execute(
                "INSERT INTO dispatch.force_tracks (member_id, at, lng, lat) "
                "SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[])",
                m,
                t,
                x,
                y,
            )

    try:
        start = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in conns))
        return time.perf_counter() - start
    finally:
        for c in conns:
            await c.close()


async def run(args: argparse.Namespace) -> None:
    async with postgres_server() as server_url:
        admin_dsn = server_url.replace("postgresql+asyncpg://", "postgresql://")
        name = f"bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'CREATE DATABASE "{name}"')
        head, _, tail = server_url.partition("?")
        db_url = head.rsplit("/", 1)[0] + f"/{name}" + (f"?{tail}" if tail else "")
        dsn = admin_dsn.partition("?")[0].rsplit("/", 1)[0] + f"/{name}"
        proc = None
        broker = TansuBroker()  # dispatch's consumers need a broker to start; positions never touch it
        broker.start()
        try:
            await asyncio.to_thread(upgrade, "dispatch", db_url)
            port = free_port()
            env = {
                **os.environ,
                "DATABASE_URL": db_url,
                "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
                "STAFF_TOKENS": json.dumps(TOKENS),
                "SERVICE_TOKEN": "b-admin",
                "LOG_LEVEL": "WARNING",
                "DISPATCH_GRID_URL": "http://127.0.0.1:9",
                "DISPATCH_OVERDUE_SWEEP_INTERVAL_S": "0",
                "DISPATCH_DB_POOL_SIZE": str(args.clients),
            }
            proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurements
                [sys.executable, "-m", "uvicorn", "--factory", "services.dispatch.app:create_app", "--port",
                 str(port), "--no-access-log", "--log-level", "warning"],
                cwd=ROOT,
                env=env,
            )  # fmt: skip
            work = batches(args.positions, args.batch)
            cpu0 = tree_cpu_s(proc.pid)
            elapsed, latencies = await through_api(port, work, args.clients)
            cpu = tree_cpu_s(proc.pid) - cpu0
            floor_s = await floor(dsn, work, args.clients)
            n = args.positions
            print(f"positions bench: {n:,} positions of {MEMBERS:,} members, batches of {args.batch}, "
                  f"{args.clients} clients (load {os.getloadavg()[0]:.1f})")  # fmt: skip
            print(f"  through the API     {n / elapsed:>10,.0f} positions/s  ({elapsed:.1f} s; "
                  f"batch p50 {pct(latencies, 0.5) * 1000:.0f} ms, p99 {pct(latencies, 0.99) * 1000:.0f} ms; "
                  f"dispatch CPU {cpu / n * 1e6:.0f} µs/position)")  # fmt: skip
            print(f"  raw asyncpg floor   {n / floor_s:>10,.0f} positions/s  ({floor_s:.1f} s; track insert only)")
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
            broker.stop()
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--positions", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=4)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
