"""Benchmark 基准测试 of the metrics service on 1 M synthetic case facts 案件事实.

Loads N synthetic facts (default 1 000 000, dispatched over 2026-01-01 … 2026-11-20 and inserted in
dispatch order as the consumer creates them, 300 units in 20 townships, natural durations filled,
working durations empty) into a fresh database, starts the real service (``uvicorn
services.metrics.app:create_app``, an API-only replica: ``METRICS_CONSUME=false``) and times, over HTTP:

(a) working durations 工作时长 for all facts — ``POST /v1/admin/recompute-durations``, the SQL pass
    over the whole table driven by the working-time calendar. Printed three ways: the first fill
    (every row written, beside a bare ``UPDATE`` of one column of every row: the write floor), a pass
    where nothing changes (compute and compare all N), and after a county calendar change (an extra
    local holiday 额外休息日: only the cases spanning it are rewritten);
(b) the monthly indicators 月度指标 for all units — ``GET /v1/indicators?period=2026-10&group_by=unit``,
    beside a bare ``SELECT unit, count(*) … GROUP BY unit`` on the same rows in the same run (the
    database's own floor); the whole year is timed the same way;
(c) a full scheme ranking 考核排名 — ``GET /v1/scores/cityops_professional/2026-10`` (and its XLSX).

Then prints the service's peak RSS (VmHWM). No assertions; the aim is (a) < 5 s, (b) < 3 s.
Timings of (b) and (c) are the median of 3 runs after a warm-up.

Run: ``.venv/bin/python bench/metrics.py [N] [--keep]``. Uses the machine PostgreSQL at
127.0.0.1:5432 (creates and drops its own database), else an embedded one (pgserver).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.embedded import MACHINE_POSTGRES, EmbeddedPostgres, can_connect_async, free_port  # noqa: E402
from shared.migrations import upgrade  # noqa: E402

UNITS = 300
TOWNSHIPS = 20
KINDS = ("township_office", "enforcement_team", "stationed_agency", "county_department")
ADMIN = {"Authorization": "Bearer dev-admin"}


def plain(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def with_database(url: str, name: str) -> str:
    head, _, tail = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{tail}" if tail else "")


LOAD_UNITS = f"""
INSERT INTO metrics.units (unit_id, name, kind, township_code)
SELECT 'U' || lpad(u::text, 4, '0'), '单位' || u,
       (ARRAY{list(KINDS)})[1 + (u % 4)],
       CASE WHEN u % 4 IN (0, 1) THEN 'T' || lpad((u % {TOWNSHIPS})::text, 2, '0') END
FROM generate_series(1, {UNITS}) AS u
"""

# One INSERT … SELECT: the facts never pass through Python. Deterministic (setseed).
LOAD_FACTS = f"""
WITH base AS (
    SELECT g,
           timestamptz '2026-01-01 00:00+08' + (random() * 323.9) * interval '1 day' AS dispatched,
           1 + floor(random() * {UNITS})::int AS u,
           random() AS r_accept, random() AS r_resolve, random() AS r_close, random() AS r_misc,
           random() AS r_sat, (ARRAY['12345', 'cityops', 'gridworker'])[1 + floor(random() * 3)::int] AS source,
           (1 + floor(random() * 5))::int AS days, random() * 8 AS resolve_days
    FROM generate_series(1, $1::int) AS g
), shaped AS (
    SELECT b.*, 'U' || lpad(u::text, 4, '0') AS unit,
           'T' || lpad((CASE WHEN u % 4 IN (0, 1) THEN u % {TOWNSHIPS} ELSE g % {TOWNSHIPS} END)::text, 2, '0')
               AS township,
           (ARRAY{list(KINDS)})[1 + (u % 4)] AS unit_kind,
           dispatched - (random() * 120) * interval '1 minute' AS reported,
           CASE WHEN r_accept < 0.93 THEN dispatched + (random() * 30) * interval '1 hour' END AS accepted,
           CASE WHEN r_resolve < 0.86 THEN dispatched + resolve_days * interval '1 day' END AS resolved
    FROM base b
)
INSERT INTO metrics.case_facts (
    case_id, reported_at, dispatched_at, accepted_at, resolved_at, verified_at, closed_at, deadline,
    accept_deadline, time_basis, unit, unit_kind, township, matter, matter_group, source, urgency,
    rejections, rejected_by, rejected_by_holder, extensions, reworks, supervisions, satisfaction, solved,
    last_event_at, event_count, handling_natural_h, closing_natural_h
)
SELECT gen_random_uuid(), reported, dispatched, accepted, resolved,
       CASE WHEN resolved IS NOT NULL AND r_close < 0.9 THEN resolved + interval '2 hours' END,
       CASE WHEN resolved IS NOT NULL AND r_close < 0.9 THEN resolved + interval '3 hours' END,
       dispatched + days * interval '1 day' + CASE WHEN r_misc < 0.08 THEN interval '5 days' ELSE interval '0' END,
       dispatched + interval '1 day',
       CASE WHEN r_misc < 0.5 THEN 'working' ELSE 'natural' END,
       unit, unit_kind, township, '事项' || (g % 40), '类别' || (g % 8), source,
       CASE WHEN r_misc > 0.97 THEN 'urgent' ELSE 'normal' END,
       CASE WHEN r_misc BETWEEN 0.2 AND 0.23 THEN 1 ELSE 0 END,
       CASE WHEN r_misc BETWEEN 0.2 AND 0.23 THEN ARRAY[unit] ELSE '{{}}'::text[] END,
       r_misc BETWEEN 0.2 AND 0.22,
       CASE WHEN r_misc < 0.08 THEN 1 ELSE 0 END,
       CASE WHEN r_misc BETWEEN 0.3 AND 0.4 THEN 1 ELSE 0 END,
       CASE WHEN r_misc BETWEEN 0.5 AND 0.52 THEN 1 ELSE 0 END,
       CASE WHEN source = '12345' AND resolved IS NOT NULL AND r_close < 0.9 THEN
            CASE WHEN r_sat < 0.7 THEN 'satisfied' WHEN r_sat < 0.9 THEN 'basically_satisfied' ELSE 'unsatisfied' END
       END,
       CASE WHEN source = '12345' AND resolved IS NOT NULL AND r_close < 0.9 THEN r_sat < 0.85 END,
       coalesce(resolved + interval '3 hours', accepted, dispatched), 6,
       CASE WHEN resolved IS NOT NULL THEN extract(epoch FROM resolved - dispatched) / 3600 END,
       CASE WHEN resolved IS NOT NULL AND r_close < 0.9
            THEN extract(epoch FROM resolved + interval '3 hours' - reported) / 3600 END
FROM shaped
ORDER BY dispatched
"""

FLOOR_MONTH = """
SELECT unit, count(*) FROM metrics.case_facts
WHERE dispatched_at >= timestamptz '2026-10-01 00:00+08' AND dispatched_at < timestamptz '2026-11-01 00:00+08'
GROUP BY unit
"""
FLOOR_YEAR = FLOOR_MONTH.replace("2026-10-01", "2026-01-01").replace("2026-11-01", "2027-01-01")


async def timed(action: Callable[[], Awaitable[Any]], runs: int = 3) -> tuple[float, Any]:
    """Median wall time of ``runs`` runs (after one warm-up), and the last result."""
    result = await action()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = await action()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def start_service(url: str, **extra_env: str) -> tuple[subprocess.Popen[bytes], int]:
    """The real service as its own process (API only), on a free port."""
    port = free_port()
    env = {
        **os.environ,
        "METRICS_DATABASE_URL": url,
        "METRICS_CONSUME": "false",
        "METRICS_GRID_URL": f"http://127.0.0.1:{free_port()}",
        "METRICS_GRID_TIMEOUT_S": "1",
        "METRICS_DB_POOL_SIZE": "4",
        "STAFF_TOKENS": "",
        "ZHPT_DEV_CREDENTIALS": "true",
        "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "services.metrics.app:create_app", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


async def recompute(client: httpx.AsyncClient) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    response = await client.post("/v1/admin/recompute-durations", headers=ADMIN)
    response.raise_for_status()
    return time.perf_counter() - t0, response.json()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_ready(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited with {proc.returncode}")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError("the service did not start")


async def run(n: int, keep: bool) -> None:
    embedded: EmbeddedPostgres | None = None
    server = MACHINE_POSTGRES
    if not await can_connect_async(server):
        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="zhpt-bench-pg-")) / "data")
        server = embedded.start()
    name = f"bench_metrics_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(plain(server))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = with_database(server, name)
    proc: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.to_thread(upgrade, "metrics", url)
        conn = await asyncpg.connect(plain(url))
        await conn.execute("SELECT setseed(0.2026)")
        await conn.execute(LOAD_UNITS)
        t0 = time.perf_counter()
        await conn.execute(LOAD_FACTS, n)
        await conn.execute("VACUUM ANALYZE metrics.case_facts")
        load_s = time.perf_counter() - t0
        resolved = await conn.fetchval("SELECT count(*) FROM metrics.case_facts WHERE resolved_at IS NOT NULL")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('metrics.case_facts'))")

        proc, port = start_service(url)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            await wait_ready(client, proc)

            # (a) working durations for all facts: first fill (all rows written), then nothing changes
            fill_s, fill = await recompute(client)
            filled = await conn.fetchval("SELECT count(handling_working_h) FROM metrics.case_facts")
            await conn.execute("VACUUM ANALYZE metrics.case_facts")
            a_s, same = await recompute(client)

            async def month() -> Any:
                r = await client.get("/v1/indicators", params={"period": "2026-10", "group_by": "unit"}, headers=ADMIN)
                r.raise_for_status()
                return r.json()

            async def year() -> Any:
                r = await client.get("/v1/indicators", params={"period": "2026", "group_by": "unit"}, headers=ADMIN)
                r.raise_for_status()
                return r.json()

            async def floor_month() -> Any:
                return await conn.fetch(FLOOR_MONTH)

            async def floor_year() -> Any:
                return await conn.fetch(FLOOR_YEAR)

            async def ranking() -> Any:
                r = await client.get("/v1/scores/cityops_professional/2026-10", headers=ADMIN)
                r.raise_for_status()
                return r.json()

            async def xlsx() -> Any:
                r = await client.get("/v1/export/cityops_professional/2026-10.xlsx", headers=ADMIN)
                r.raise_for_status()
                return r.content

            b_s, month_body = await timed(month)
            bf_s, _ = await timed(floor_month)
            y_s, year_body = await timed(year)
            yf_s, _ = await timed(floor_year)
            c_s, scores = await timed(ranking)
            x_s, sheet = await timed(xlsx)
            rss = peak_rss_mb(proc.pid)
        stop(proc)
        proc = None

        # the write floor of the first fill: one column of every resolved row, nothing computed (rolled back)
        floor_tx = conn.transaction()
        await floor_tx.start()
        t0 = time.perf_counter()
        await conn.execute(
            "UPDATE metrics.case_facts SET handling_working_h = handling_natural_h WHERE resolved_at IS NOT NULL"
        )
        write_floor_s = time.perf_counter() - t0
        await floor_tx.rollback()
        await conn.execute("VACUUM ANALYZE metrics.case_facts")

        # a county calendar change: 2026-10-15 becomes a local holiday 额外休息日 (e.g. a typhoon day)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as fh:
            fh.write(
                'default:\n  working_hours: [["08:30", "12:00"], ["13:30", "17:30"]]\n'
                '  extra_holidays: ["2026-10-15"]\n  extra_working_days: []\n'
            )
        proc, port = start_service(url, CALENDAR_OVERRIDES=fh.name)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            await wait_ready(client, proc)
            change_s, changed = await recompute(client)
        os.unlink(fh.name)
        await conn.close()

        month_cases = month_body["total"]["counts"]["dispatched"]
        year_cases = year_body["total"]["counts"]["dispatched"]
        scored = sum(1 for r in scores["rows"] if r["status"] == "scored")
        print(f"case facts loaded:                         {n:,} in {load_s:.1f} s ({size}, {resolved:,} resolved)")
        print(
            f"(a) working durations, all facts:          {a_s:6.2f} s  "
            f"(computed and compared for all {n:,}; {same['changed']} rows changed)"
        )
        print(
            f"    first fill, every row written:         {fill_s:6.2f} s  "
            f"({fill['changed']:,} rows; {filled:,} 处置时长 filled)"
        )
        print(f"    floor: bare UPDATE of those rows:      {write_floor_s:6.2f} s  → {fill_s / write_floor_s:.1f} x")
        print(
            f"    after a calendar change (10-15 off):   {change_s:6.2f} s  "
            f"({changed['changed']:,} rows spanning the new holiday rewritten)"
        )
        print(
            f"(b) monthly indicators, all units:         {b_s:6.3f} s  "
            f"(2026-10: {month_cases:,} cases, {len(month_body['rows'])} units, over HTTP)"
        )
        print(f"    floor SELECT count(*) GROUP BY unit:   {bf_s:6.3f} s  (same rows, same run) → {b_s / bf_s:.1f} x")
        print(f"    yearly indicators, all units:          {y_s:6.3f} s  (2026: {year_cases:,} cases)")
        print(f"    floor for the year:                    {yf_s:6.3f} s  → {y_s / yf_s:.1f} x")
        print(
            f"(c) full scheme ranking:                   {c_s:6.3f} s  "
            f"(cityops_professional 2026-10: {len(scores['rows'])} rows, {scored} ranked)"
        )
        print(f"    the same ranking as XLSX:              {x_s:6.3f} s  ({len(sheet) / 1024:.0f} KiB)")
        print(f"service peak RSS (VmHWM):                  {rss:6.1f} MiB")
    finally:
        if proc is not None:
            stop(proc)
        if not keep:
            admin = await asyncpg.connect(plain(server))
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
        else:
            print(f"kept database {name}")
        if embedded is not None:
            embedded.stop()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 1_000_000
    asyncio.run(run(n, keep="--keep" in sys.argv))


if __name__ == "__main__":
    main()
