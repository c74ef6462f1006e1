"""Benchmark the what-if 模拟调整性能测试: a 50-entry devolution proposal over 1 M past cases.

A scratch database (dispatch's schema, on the machine's PostgreSQL or ``TEST_DATABASE_URL`` — see
``bench/measure.py``) is filled by PostgreSQL itself (``INSERT … SELECT generate_series``) with
``--cases`` past cases (default 1 000 000) of the demo county 青溪县 over 90 days: every township,
matter, grid, source and urgency of the demo, the rule keywords (燃气 …) in some descriptions.
Then, in the same run, it times:

* the bare scan (floor): the same rows' routing facts (township, matter, grid, source, appeal
  type, urgency, report time) read by the client, and ``count(*)`` of them in the server;
* the what-if (:func:`services.dispatch.whatif_store.run_what_if`) of a 50-entry proposal
  (devolve, entrust, assist, return) over the whole period.

It prints seconds and cases/s for each, and the ratio. No assertions: this is a measurement.
同一次运行中测量：裸扫描（客户端读取同一批行的路由要素；服务器端 count）与 50 项提案的模拟调整。

Usage / 用法::

    .venv/bin/python bench/whatif.py [--cases 1000000] [--keep-db]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import postgres_server  # noqa: E402
from services.dispatch.grid_client import LoadedJurisdiction  # noqa: E402
from services.dispatch.whatif import proposed_snapshot  # noqa: E402
from services.dispatch.whatif_store import WhatIfRequest, run_what_if  # noqa: E402
from shared.calendar import SHANGHAI, load_calendar  # noqa: E402
from shared.db import create_engine, session_factory  # noqa: E402
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot  # noqa: E402
from shared.jurisdiction.devolution import ProposedItem  # noqa: E402
from tests.conftest import create_database, drop_database  # noqa: E402

DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
PERIOD = (date(2026, 8, 1), date(2026, 10, 29))  # 90 days 90 天
TEXTS = ["占道摆摊影响通行", "有人闻到燃气味", "群众反映问题，请尽快处理", "液化气罐堆放在楼道", "噪声扰民"]

FILL = """
INSERT INTO dispatch.cases (id, incident_id, source, source_id, state, version, township, grid, unit, matter,
    urgency, reported_at, explanation, snapshot, incident)
SELECT md5('c' || g)::uuid, md5('i' || g)::uuid, s.source, 'B-' || g, 'dispatched', 2,
       p.township, p.grid, p.unit, p.matter,
       (ARRAY['normal', 'normal', 'normal', 'urgent', 'critical'])[1 + (g * 7) % 5],
       $1::timestamptz + make_interval(secs => (g::bigint * 7919) % (90 * 86400)),
       '{}'::jsonb, '{}'::jsonb,
       jsonb_build_object('description', ($2::text[])[1 + (g * 13) % cardinality($2::text[])],
                          'appeal_type', (ARRAY['complaint', 'report', 'help', 'praise'])[1 + (g * 11) % 4])
FROM generate_series($3::int, $8::int) AS g
JOIN LATERAL (SELECT (ARRAY['12345', 'cityops', 'gridworker'])[1 + g % 3] AS source) s ON true
JOIN LATERAL (
    SELECT t.township, t.grid, t.unit, t.matter FROM unnest($4::text[], $5::text[], $6::text[], $7::text[])
        WITH ORDINALITY AS t(township, grid, unit, matter, k)
    WHERE t.k = 1 + (g * 31) % cardinality($4::text[])
) p ON true
"""


def placements(snapshot: JurisdictionSnapshot) -> tuple[list[str], list[str], list[str], list[str]]:
    """(township, grid, unit, matter) combinations the cases cycle through (the recorded unit is the
    township's enforcement team; it only weighs the cases outside the proposal). 案件循环使用的组合。"""
    rows: tuple[list[str], list[str], list[str], list[str]] = ([], [], [], [])
    grids = snapshot.divisions("grid")
    for n, matter in enumerate(snapshot.matters):
        for township in snapshot.divisions("township"):
            mine = [g for g in grids if g.code.startswith(township.code)]
            grid = mine[n % len(mine)]
            values = (township.code, grid.code, f"{township.code}-zfd", matter.code)
            for column, value in zip(rows, values, strict=True):
                column.append(value)
    return rows


def proposal(snapshot: JurisdictionSnapshot, size: int) -> list[ProposedItem]:
    """``size`` valid items: each flips a (township, matter) pair — devolved ones returned or made
    assist/entrusted, the others devolved or entrusted. 有效的提案项：翻转镇街事项的下放方式。"""
    items: list[ProposedItem] = []
    modes_on = ["none", "assist", "entrusted"]
    modes_off = ["devolved", "entrusted", "assist"]
    for matter in snapshot.matters:
        for township in snapshot.divisions("township"):
            if len(items) >= size:
                return items
            if matter.township_function not in snapshot.township_functions(township.code):
                continue
            now = snapshot.devolution.on(township.code, matter.code, PERIOD[0])
            modes = modes_on if now is not None else modes_off
            mode: Any = modes[len(items) % 3]
            candidate = ProposedItem(township=township.code, matter=matter.code, mode=mode)
            if not proposed_snapshot(snapshot, [*items, candidate])[1]:
                items.append(candidate)
    return items


async def fill(url: str, snapshot: JurisdictionSnapshot, n: int) -> float:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        started = time.perf_counter()
        townships, grids, units, matters = placements(snapshot)
        start = datetime.combine(PERIOD[0], datetime.min.time(), SHANGHAI)
        chunk = 200_000
        for first in range(0, n, chunk):
            size = min(chunk, n - first)
            await conn.execute(FILL, start, TEXTS, first + 1, townships, grids, units, matters, first + size)
        await conn.execute("ANALYZE dispatch.cases")
        return time.perf_counter() - started
    finally:
        await conn.close()


async def bare_scan(url: str) -> tuple[float, float, int]:
    """Seconds to read the rows' routing facts to the client, seconds for count(*), the count. 裸扫描。"""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        bounds = (
            f"reported_at >= '{PERIOD[0].isoformat()}T00:00:00+08:00' "
            f"AND reported_at < '{(PERIOD[1] + timedelta(days=1)).isoformat()}T00:00:00+08:00'"
        )
        started = time.perf_counter()
        rows = 0
        async with conn.transaction():
            async for _ in conn.cursor(
                "SELECT township, matter, grid, source, incident->>'appeal_type', urgency, reported_at "
                f"FROM dispatch.cases WHERE {bounds}",
                prefetch=10_000,
            ):
                rows += 1
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        await conn.fetchval(f"SELECT count(*) FROM dispatch.cases WHERE {bounds}")
        return read_s, time.perf_counter() - started, rows
    finally:
        await conn.close()


async def what_if(url: str, loaded: LoadedJurisdiction, items: list[ProposedItem]) -> tuple[float, dict[str, Any]]:
    engine = create_engine(url, pool_size=1)
    try:
        request = WhatIfRequest(items=items, reported_from=PERIOD[0], reported_to=PERIOD[1], threshold_pct=20)
        started = time.perf_counter()
        async with session_factory(engine)() as session, session.begin():
            answer = await run_what_if(session=session, jurisdiction=loaded, request=request)
        return time.perf_counter() - started, answer
    finally:
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000, help="past cases to generate (default 1 000 000)")
    parser.add_argument("--entries", type=int, default=50, help="proposal size (default 50)")
    args = parser.parse_args()
    snapshot = JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=1, rules_version=1)
    loaded = LoadedJurisdiction(snapshot, load_calendar(county=snapshot.county_code))
    items = proposal(snapshot, args.entries)
    async with postgres_server() as server_url:
        url = await create_database(server_url, ("dispatch",))
        try:
            fill_s = await fill(url, snapshot, args.cases)
            print(f"generated {args.cases:,} cases in {fill_s:.1f} s (PostgreSQL INSERT … SELECT; machine busy)")
            read_s, count_s, rows = await bare_scan(url)
            whatif_s, answer = await what_if(url, loaded, items)
            # A second what-if: the same proposal again (a meeting tries several). 第二次模拟。
            again_s, _ = await what_if(url, loaded, items)
        finally:
            await drop_database(server_url, url)
    print(
        f"proposal: {len(items)} entries; cases in the period {answer['cases']:,}, of the proposal "
        f"{answer['affected_cases']:,}, moved {answer['moved_cases']:,}"
    )
    print(f"floor  bare scan, count(*) in the server:      {count_s:7.2f} s  ({rows / count_s:12,.0f} cases/s)")
    print(f"floor  bare scan, routing facts to the client: {read_s:7.2f} s  ({rows / read_s:12,.0f} cases/s)")
    rate = answer["cases"] / whatif_s
    print(
        f"what-if, {len(items)} entries:                    {whatif_s:7.2f} s  ({rate:12,.0f} cases/s)"
        f"  = {whatif_s / read_s:.2f} × the client scan, {whatif_s / count_s:.1f} × count(*)"
    )
    print(f"what-if again:                               {again_s:7.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
