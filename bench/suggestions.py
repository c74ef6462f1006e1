"""Suggestion latency 派单建议时延 for a county with 2,000 members: p50/p99 of one suggestion (the use case
behind ``GET /v1/forces/cases/{id}/suggestions``: the unit's members, rosters, busy/free, latest positions
and open tasks read from PostgreSQL, then ranked), beside the floor of the same reads without ranking.

Set-up: a fresh database (dispatch migrated); the demo county; 2,000 members (400 in 青溪镇综合行政执法队
with 40 teams, the rest spread over the other units), every member on a daily shift, a fresh position for
each, 200 accepted cases of 青溪镇 at distinct spots. Sequential calls, in-process. Prints figures.
Usage: python bench/suggestions.py [--calls 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.lifecycle import create_cases  # noqa: E402
from bench.measure import pct, postgres_server  # noqa: E402
from services.dispatch.case_model import Actor, Role  # noqa: E402
from services.dispatch.forces import store  # noqa: E402
from services.dispatch.forces.people import ForcesDocument  # noqa: E402
from services.dispatch.forces.positions import Fix  # noqa: E402
from services.dispatch.forces.service import RosterCache, case_suggestions, load_forces  # noqa: E402
from services.dispatch.grid_client import LoadedJurisdiction  # noqa: E402
from shared.calendar import load_calendar  # noqa: E402
from shared.db import create_engine, session_factory  # noqa: E402
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot  # noqa: E402
from shared.migrations import upgrade  # noqa: E402

DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
UNIT = "330127101-zfd"
MEMBERS, IN_UNIT = 2_000, 400


def document() -> ForcesDocument:
    others = [u["id"] for u in DEMO["units"] if u["id"] != UNIT]
    members, shifts = [], []
    for i in range(MEMBERS):
        unit = UNIT if i < IN_UNIT else others[i % len(others)]
        members.append({"member_id": f"m{i:05d}", "unit": unit, "name": f"队员{i}",
                        "role": "leader" if i == 0 else "member"})  # fmt: skip
    by_unit: dict[str, list[str]] = {}
    for m in members:
        by_unit.setdefault(str(m["unit"]), []).append(str(m["member_id"]))
    for unit, ids in by_unit.items():
        shifts.append({"unit": unit, "label": "全天", "start": "00:00", "end": "00:00", "members": ids})
    teams = [{"team_id": f"t{k:02d}", "unit": UNIT, "name": f"小组{k}", "members": [f"m{i:05d}" for i in
              range(k * 10, k * 10 + 10)]} for k in range(40)]  # fmt: skip
    return ForcesDocument.model_validate({"county_code": "330127", "members": members, "teams": teams,
                                          "shifts": shifts})  # fmt: skip


async def run(args: argparse.Namespace) -> None:
    async with postgres_server() as server_url:
        admin_dsn = server_url.replace("postgresql+asyncpg://", "postgresql://")
        name = f"bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'CREATE DATABASE "{name}"')
        head, _, tail = server_url.partition("?")
        db_url = head.rsplit("/", 1)[0] + f"/{name}" + (f"?{tail}" if tail else "")
        engine = create_engine(db_url, pool_size=2)
        try:
            await asyncio.to_thread(upgrade, "dispatch", db_url)
            snapshot = JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=1, rules_version=1)
            loaded = LoadedJurisdiction(snapshot, load_calendar(county=snapshot.county_code))
            ids = await create_cases(db_url, 200)
            now = datetime.now(UTC)
            factory = session_factory(engine)
            async with factory() as session, session.begin():
                await load_forces(session=session, doc=document(), jurisdiction=loaded)
                fixes = [Fix(f"m{i:05d}", now, 119.04 + (i % 60) * 0.001, 29.58 + (i // 60 % 30) * 0.001)
                         for i in range(MEMBERS)]  # fmt: skip
                await store.save_fixes(session=session, fixes=fixes)
                await session.execute(
                    text("UPDATE dispatch.cases SET state = 'accepted', assignees = ARRAY['m00001', 'm00002']")
                )
            rosters = RosterCache()
            actor = Actor(Role.DISPATCHER, township="*", id="bench")
            timings: list[float] = []
            floor: list[float] = []
            for k in range(args.calls):
                case_id = uuid.UUID(ids[k % len(ids)])
                t = time.perf_counter()
                async with factory() as session, session.begin():
                    _, found = await case_suggestions(session=session, case_id=case_id, actor=actor, county="330127",
                                                      rosters=rosters, calendar=loaded.calendar, now=now)  # fmt: skip
                timings.append(time.perf_counter() - t)
                assert found, "no suggestion"
                t = time.perf_counter()
                async with factory() as session, session.begin():
                    members = await store.unit_members(session=session, units=[UNIT])
                    ids_ = [m["member_id"] for m in members]
                    await store.statuses(session=session, member_ids=ids_)
                    await store.latest_positions(session=session, member_ids=ids_)
                    await store.open_tasks(session=session, unit=UNIT)
                    await store.unit_teams(session=session, unit=UNIT)
                floor.append(time.perf_counter() - t)
            print(f"suggestion bench: {MEMBERS:,} members in the county ({IN_UNIT} in {UNIT}, 40 teams), "
                  f"{args.calls} sequential suggestions (load {os.getloadavg()[0]:.1f})")  # fmt: skip
            for label, values in (("suggestion", timings), ("floor (reads only)", floor)):
                print(f"  {label:<19} p50 {pct(values, 0.5) * 1000:6.1f} ms  p99 {pct(values, 0.99) * 1000:6.1f} ms")
            print(f"  ({len(found)} suggestions per call, the first of tier {found[0].tier})")
        finally:
            await engine.dispose()
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=500)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
