"""Benchmark 基准测试 of the 监督问责 report and the monthly indicators on N synthetic cases (default 1 M).

Loads N synthetic case facts 案件事实 (the same generator as ``bench/metrics.py``: dispatched over
2026-01-01 … 2026-11-20, 300 units in 20 townships) and, from them, each case's events 案件事件 into
``metrics.case_events`` as dispatch publishes them (派遣, 签收, 办结, 核查 and, for some, 退单 + 判定退单
无效, 吹哨 + 报到, 督办, 超期): about 4.5 events a case. Then starts the real service (an API-only replica,
``METRICS_CONSUME=false``) and times, over HTTP, each beside a bare ``GROUP BY`` over the same rows in
the same run (the database's own floor):

(a) the 监督问责 report of 2026-10, county-wide — ``GET /v1/accountability?period=2026-10``: it reads
    the events of every case touched in the period (or its 60-day lookback) or due in it and folds
    them with the consumer's reducer; floor: ``SELECT type, count(*) … GROUP BY type`` over those
    same event rows;
(b) the monthly indicators for all units — ``GET /v1/indicators?period=2026-10&group_by=unit``; floor:
    ``SELECT unit, count(*) … GROUP BY unit`` on the month's facts.

Timings are the median of ``RUNS`` runs after a warm-up ((a): one warm-up and one run above 50 000 cases,
one cold run above 500 000: it is slow). No assertions.

Run: ``.venv/bin/python bench/metrics_report.py [N] [--keep]``. Uses the machine PostgreSQL at
127.0.0.1:5432 (creates and drops its own database), else an embedded one (pgserver).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measure import postgres_server  # noqa: E402
from bench.metrics import (  # noqa: E402
    ADMIN,
    FLOOR_MONTH,
    LOAD_FACTS,
    LOAD_UNITS,
    peak_rss_mb,
    plain,
    start_service,
    stop,
    wait_ready,
    with_database,
)
from shared.migrations import upgrade  # noqa: E402

PERIOD = "2026-10"
START, END = "2026-10-01 00:00+08", "2026-11-01 00:00+08"

# Each case's events from its fact, flat like dispatch's CaseEvent (every event carries where the case
# stands). One INSERT … SELECT: the events never pass through Python.
LOAD_EVENTS = """
INSERT INTO metrics.case_events (event_id, case_id, type, version, occurred_at, data)
WITH f AS (
    SELECT case_id, dispatched_at, accepted_at, resolved_at, verified_at, deadline, supervisions,
           rejected_by_holder, unit, abs(hashtext(case_id::text)) % 100 AS h,
           jsonb_build_object(
               'unit', unit, 'unit_kind', unit_kind, 'township', township, 'source', source,
               'matter', matter, 'matter_group', matter_group, 'urgency', urgency, 'time_basis', time_basis,
               'reported_at', reported_at, 'deadline', deadline, 'accept_deadline', accept_deadline,
               'provisional', false
           ) AS base
    FROM metrics.case_facts
)
SELECT gen_random_uuid(), case_id, t.type, t.version, t.at, base || t.extra
FROM f CROSS JOIN LATERAL (VALUES
    ('case.dispatched', 2, dispatched_at, '{"state": "dispatched"}'::jsonb),
    ('case.rejected', 3, CASE WHEN rejected_by_holder THEN dispatched_at + interval '1 hour' END,
     jsonb_build_object('state', 'rejected', 'rejected_unit', unit, 'reason', '不归我管')),
    ('case.rejection_ruled', 4, CASE WHEN rejected_by_holder THEN dispatched_at + interval '2 hours' END,
     jsonb_build_object('state', 'dispatched', 'rejected_unit', unit, 'rejection_valid', false)),
    ('case.accepted', 5, accepted_at, '{"state": "accepted"}'::jsonb),
    ('case.escalated', 6, CASE WHEN h < 2 THEN dispatched_at + interval '3 hours' END,
     jsonb_build_object('department', 'U0003',
                        'details', jsonb_build_object('report_deadline', dispatched_at + interval '1 day'))),
    ('case.reported_in', 7, CASE WHEN h < 1 THEN dispatched_at + interval '30 hours' END, '{}'::jsonb),
    ('case.supervised', 8, CASE WHEN supervisions > 0 THEN dispatched_at + interval '1 day' END, '{}'::jsonb),
    ('case.overdue', 9,
     CASE WHEN deadline < coalesce(resolved_at, timestamptz '2026-12-01 00:00+08')
          THEN deadline + interval '1 minute' END, '{}'::jsonb),
    ('case.resolved', 10, resolved_at, '{"state": "resolved"}'::jsonb),
    ('case.verified', 11, verified_at, '{"state": "closed", "verification_passed": true}'::jsonb)
) AS t(type, version, at, extra)
WHERE t.at IS NOT NULL
"""

# The rows the report reads (accountability_store.load_report): the events of the cases touched in the
# period or its 60-day lookback, or due in it.
FLOOR_REPORT = f"""
SELECT e.type, count(*) FROM metrics.case_events e
WHERE e.case_id IN (
    SELECT case_id FROM metrics.case_events
    WHERE occurred_at >= timestamptz '{START}' - interval '60 days' AND occurred_at < timestamptz '{END}'
    UNION
    SELECT case_id FROM metrics.case_facts
    WHERE deadline >= timestamptz '{START}' AND deadline < timestamptz '{END}'
)
GROUP BY e.type
"""
RUNS = 3


async def timed(action: Callable[[], Awaitable[Any]], runs: int, warm_up: bool = True) -> tuple[float, Any]:
    """Median wall time of ``runs`` runs (after one warm-up when ``warm_up``), and the last result."""
    result = await action() if warm_up else None
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = await action()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def report_lines(
    n: int,
    facts_s: float,
    events: int,
    events_s: float,
    size: str,
    report: tuple[float, float, Any, Any],
    month: tuple[float, float, Any],
    rss: float,
) -> None:
    """Print the figures, each beside its floor. 输出结果（与下限并列）。"""
    a_s, af_s, report_body, report_rows = report
    b_s, bf_s, month_body = month
    read = sum(int(r["count"]) for r in report_rows)
    findings = report_body["findings"]
    cases_named = sum(len(f["cases"]) for f in findings)
    month_cases = month_body["total"]["counts"]["dispatched"]
    print(f"cases:                                     {n:,} facts in {facts_s:.1f} s")
    print(f"events:                                    {events:,} in {events_s:.1f} s ({size})")
    print(
        f"(a) 监督问责 report {PERIOD}, county-wide:   {a_s:7.2f} s  "
        f"({read:,} events folded; {len(findings)} findings naming {cases_named:,} cases; over HTTP)"
    )
    print(f"    floor SELECT type, count(*) GROUP BY:  {af_s:7.2f} s  (same event rows, same run) → {a_s / af_s:.1f} x")
    print(
        f"(b) monthly indicators, all units:         {b_s:7.3f} s  "
        f"({PERIOD}: {month_cases:,} cases, {len(month_body['rows'])} units, over HTTP)"
    )
    print(f"    floor SELECT unit, count(*) GROUP BY:  {bf_s:7.3f} s  (same rows, same run) → {b_s / bf_s:.1f} x")
    print(f"service peak RSS (VmHWM):                  {rss:7.1f} MiB")


async def run(n: int, keep: bool) -> None:
    async with postgres_server() as server:
        name = f"bench_report_{uuid.uuid4().hex[:8]}"
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
            facts_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            await conn.execute(LOAD_EVENTS)
            await conn.execute("VACUUM ANALYZE metrics.case_facts")
            await conn.execute("VACUUM ANALYZE metrics.case_events")
            events_s = time.perf_counter() - t0
            events = await conn.fetchval("SELECT count(*) FROM metrics.case_events")
            size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('metrics.case_events'))")

            proc, port = start_service(url)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=1800) as client:
                await wait_ready(client, proc)

                async def report() -> Any:
                    r = await client.get("/v1/accountability", params={"period": PERIOD}, headers=ADMIN)
                    r.raise_for_status()
                    return r.json()

                async def floor_report() -> Any:
                    return await conn.fetch(FLOOR_REPORT)

                async def month() -> Any:
                    r = await client.get("/v1/indicators", params={"period": PERIOD, "group_by": "unit"}, headers=ADMIN)
                    r.raise_for_status()
                    return r.json()

                async def floor_month() -> Any:
                    return await conn.fetch(FLOOR_MONTH)

                report_runs = 1 if n > 50_000 else RUNS
                warm = n <= 500_000  # above, the report runs once, cold (it takes a minute or more)
                a_s, report_body = await timed(report, report_runs, warm)
                af_s, report_rows = await timed(floor_report, report_runs, warm)
                b_s, month_body = await timed(month, RUNS)
                bf_s, _ = await timed(floor_month, RUNS)
                rss = peak_rss_mb(proc.pid)
            stop(proc)
            proc = None
            await conn.close()

            report_lines(
                n, facts_s, events, events_s, size, (a_s, af_s, report_body, report_rows), (b_s, bf_s, month_body), rss
            )
        finally:
            if proc is not None:
                stop(proc)
            if not keep:
                admin = await asyncpg.connect(plain(server))
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()
            else:
                print(f"kept database {name}")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 1_000_000
    asyncio.run(run(n, keep="--keep" in sys.argv))


if __name__ == "__main__":
    main()
