"""Benchmark 基准测试 of 联合执法未报到 in 监督问责: the consumer's fold and the report's section.

(a) the ``operation.events`` consumer: ``E`` events of ``E / 4`` operations (opened, two 报到 — one late —,
    concluded with one unit absent) applied one per transaction through
    :func:`services.metrics.operation_store.apply_operation_event` (store the event, refold the operation,
    replace its lapses); floor: the same events' bare ``INSERT … ON CONFLICT DO NOTHING``, one per
    transaction, in the same run;
(b) the report's section for 2026-10, county-wide and for one township, from ``N`` operations over 2026
    (``N × 2`` lapse rows, 20 townships, 300 units) through
    :func:`services.metrics.operation_store.load_operation_findings`; floor: a bare
    ``SELECT kind, unit, count(*) … GROUP BY`` over the same rows.

Timings are medians of ``RUNS`` runs after a warm-up. No assertions.

Run: ``.venv/bin/python bench/joint_operations.py [N] [E]`` (defaults 100 000 operations, 2 000 events).
Uses the machine PostgreSQL at 127.0.0.1:5432 (creates and drops its own database), else an embedded one.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measure import postgres_server  # noqa: E402
from bench.metrics import plain, with_database  # noqa: E402
from services.metrics.operation_store import apply_operation_event, load_operation_findings  # noqa: E402
from services.metrics.operations import OperationEventRecord  # noqa: E402
from services.metrics.periods import TZ, parse_period  # noqa: E402
from shared.db import create_engine, session_factory  # noqa: E402
from shared.migrations import upgrade  # noqa: E402

RUNS = 5
PERIOD = parse_period("2026-10")

# N operations over 2026, each with one late unit (at its 报到) and one absent (at the conclusion). Deterministic.
LOAD_LAPSES = """
WITH ops AS (
    SELECT g, gen_random_uuid() AS id,
           timestamptz '2026-01-01 08:00+08' + (g % 330) * interval '1 day' + (g % 10) * interval '1 hour' AS starts,
           'T' || lpad((g % 20)::text, 2, '0') AS township
    FROM generate_series(1, $1::int) AS g
)
INSERT INTO metrics.operation_lapses (operation_id, unit, kind, at, township, lead_unit, starts_at, ends_at, cases)
SELECT id, 'U' || lpad(((g * 7 + k) % 300)::text, 4, '0'), CASE k WHEN 0 THEN 'late' ELSE 'absent' END,
       CASE k WHEN 0 THEN starts + interval '20 minutes' ELSE starts + interval '3 hours' END,
       township, 'U' || lpad((g % 300)::text, 4, '0'), starts, starts + interval '2 hours',
       jsonb_build_array(gen_random_uuid()::text, gen_random_uuid()::text)
FROM ops, generate_series(0, 1) AS k
"""

FLOOR = """
SELECT kind, township, unit, count(*) FROM metrics.operation_lapses
WHERE at >= $1 AND at < $2 {where} GROUP BY kind, township, unit
"""


def events_of(n_ops: int) -> list[OperationEventRecord]:
    """Four events per operation, as dispatch publishes them (each carrying the state after it)."""
    out: list[OperationEventRecord] = []
    base = datetime(2026, 10, 5, 9, tzinfo=TZ)
    for i in range(n_ops):
        op, starts = str(uuid.uuid4()), base + timedelta(hours=i % 200)
        snap: dict[str, Any] = {
            "state": "open", "township": f"T{i % 20:02d}", "lead_unit": "U0001", "units": ["U0001", "U0002", "U0003"],
            "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "cases": [str(uuid.uuid4())], "confirmed_late": [], "absent": [],
        }  # fmt: skip
        steps: list[tuple[str, datetime, dict[str, Any]]] = [
            ("operation.opened", starts - timedelta(hours=1), {}),
            ("operation.confirmed", starts - timedelta(minutes=5), {"unit": "U0001", "late": False}),
            ("operation.confirmed", starts + timedelta(minutes=20), {"unit": "U0002", "late": True}),
            ("operation.concluded", starts + timedelta(hours=3), {"state": "concluded", "absent": ["U0003"]}),
        ]
        for version, (type_, at, change) in enumerate(steps, start=1):
            snap = {**snap, **{k: v for k, v in dict(change).items() if k in snap}}
            data = {**snap, "unit": change.get("unit"), "late": change.get("late")}
            out.append(OperationEventRecord(str(uuid.uuid4()), op, type_, version, at, data))
    return out


async def timed(fn: Callable[[], Awaitable[Any]], runs: int = RUNS) -> tuple[float, Any]:
    result = await fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


async def run(n: int, e: int) -> None:
    async with postgres_server() as server:
        name = f"bench_jointops_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(plain(server))
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = with_database(server, name)
        engine = create_engine(url, pool_size=2)
        try:
            await asyncio.to_thread(upgrade, "metrics", url)
            sessions = session_factory(engine)
            conn = await asyncpg.connect(plain(url))

            # (a) the consumer, one event per transaction, beside the bare insert of the same events.
            records = events_of(max(1, e // 4))
            t0 = time.perf_counter()
            for record in records:
                async with sessions() as session, session.begin():
                    await apply_operation_event(session=session, record=record)
            consumer_s = time.perf_counter() - t0
            await conn.execute("CREATE TABLE metrics.bench_floor (LIKE metrics.operation_events INCLUDING ALL)")
            t0 = time.perf_counter()
            for r in records:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO metrics.bench_floor (event_id, operation_id, type, version, occurred_at, data)"
                        " VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING",
                        uuid.UUID(r.event_id), uuid.UUID(r.operation_id), r.type, r.version, r.occurred_at,
                        json.dumps(dict(r.data)),
                    )  # fmt: skip
            floor_a_s = time.perf_counter() - t0
            await conn.execute("DELETE FROM metrics.operation_lapses")

            # (b) the section of a month, from n operations.
            t0 = time.perf_counter()
            await conn.execute(LOAD_LAPSES, n)
            await conn.execute("ANALYZE metrics.operation_lapses")
            load_s = time.perf_counter() - t0
            as_of = PERIOD.end

            async def county() -> Any:
                async with sessions() as session:
                    return await load_operation_findings(session=session, period=PERIOD, as_of=as_of, township=None)

            async def township() -> Any:
                async with sessions() as session:
                    return await load_operation_findings(session=session, period=PERIOD, as_of=as_of, township="T03")

            async def floor_county() -> Any:
                return await conn.fetch(FLOOR.format(where=""), PERIOD.start, PERIOD.end)

            async def floor_township() -> Any:
                return await conn.fetch(FLOOR.format(where="AND township = 'T03'"), PERIOD.start, PERIOD.end)

            c_s, c_rows = await timed(county)
            cf_s, cf_rows = await timed(floor_county)
            t_s, t_rows = await timed(township)
            tf_s, _ = await timed(floor_township)
            month_rows = await conn.fetchval(
                "SELECT count(*) FROM metrics.operation_lapses WHERE at >= $1 AND at < $2", PERIOD.start, PERIOD.end
            )
            await conn.close()
            print(f"联合执法未报到 bench (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
            print(
                f"(a) consumer: {len(records)} events in {consumer_s:.2f} s = {consumer_s / len(records) * 1e3:.2f} ms "
                f"an event (store + refold + replace lapses); floor (bare insert, one per transaction): "
                f"{floor_a_s / len(records) * 1e3:.2f} ms an event"
            )
            print(f"(b) {n} operations, {2 * n} lapse rows loaded in {load_s:.1f} s; {month_rows} rows in {PERIOD.id}")
            print(
                f"    county-wide section: {c_s * 1e3:.1f} ms ({len(c_rows)} findings); "
                f"floor GROUP BY: {cf_s * 1e3:.1f} ms ({len(cf_rows)} groups)"
            )
            print(f"    one township: {t_s * 1e3:.1f} ms ({len(t_rows)} findings); floor GROUP BY: {tf_s * 1e3:.1f} ms")
        finally:
            await engine.dispose()
            admin = await asyncpg.connect(plain(server))
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100_000
    e = int(args[1]) if len(args) > 1 else 2_000
    asyncio.run(run(n, e))


if __name__ == "__main__":
    main()
