"""联合执法未报到 end to end: a joint operation run through dispatch's real API (grid, intake, dispatch, metrics;
PostgreSQL and Tansu) → ``operation.events`` → metrics → the 监督问责 report of the period.

青溪镇's dispatcher opens an operation starting in a few seconds on one case, led by the enforcement team, with
the police station and the emergency office. The team confirms before the start (in time), the station after
it (late), the emergency office never (absent when the team concludes). The report of the month, as 青溪镇's
township admin and the county see it, lists exactly the late and the absent unit, each with the operation
and its case; 白沙街道's dispatcher sees neither; the lapses are stored once (4 events → 2 rows).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.metrics.app import create_app as create_metrics
from services.metrics.periods import TZ
from services.metrics.settings import MetricsSettings
from shared.embedded import TansuBroker
from tests.helpers import eventually, serve
from tests.integration.test_dispatch_support import ADMIN, STAFF, Stack, bearer, platform, record, unit

ROOT = Path(__file__).resolve().parents[2]
FORCES = orjson.loads((ROOT / "deploy" / "demo" / "forces.json").read_bytes())
ZFD, PCS, YJGL = "330127101-zfd", "pz-pcs-qingxi", "330127101-yjgl"
QINGXI_DISPATCHER, BAISHA_DISPATCHER = bearer("t-disp-qx"), bearer("t-disp-bs")
QINGXI_ADMIN, COUNTY = bearer("t-town-qx"), bearer("t-disp")
#: How far ahead the operation starts: time enough for the lead unit to confirm before it on a busy machine.
LEAD = timedelta(seconds=20)


@pytest.fixture(scope="module")
async def stack(database_url: str, module_broker: TansuBroker) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    async with platform(database_url, module_broker.bootstrap) as s:
        response = await s.dispatch.put("/v1/forces/330127", json=FORCES, headers=ADMIN)
        assert response.status_code == 200, response.text
        settings = MetricsSettings(
            database_url=database_url,
            kafka_bootstrap_servers=module_broker.bootstrap,
            staff_tokens=STAFF,
            grid_url="http://grid",
            grid_token="t-admin",
            revision_interval_s=0.2,
            log_json=False,
        )
        metrics_app = create_metrics(settings, grid_transport=httpx.ASGITransport(app=s.grid_app))
        async with serve(metrics_app) as metrics:
            yield s, metrics


async def act(stack: Stack, oid: str, action: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    response = await stack.dispatch.post(f"/v1/forces/operations/{oid}/{action}", json=body, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_late_and_absent_units_reach_the_accountability_report(
    stack: tuple[Stack, httpx.AsyncClient],
) -> None:
    s, metrics = stack
    case = await s.case_of(await s.post("12345", record("12345")))
    assert case["unit"] == ZFD, case
    starts = datetime.now(UTC) + LEAD
    spec = {
        "township": "330127101", "lead_unit": ZFD, "units": [PCS, YJGL],
        "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "place": "青溪镇桥头菜场", "cases": [case["id"]], "note": "占道经营联合整治",
    }  # fmt: skip
    opened = await s.dispatch.post("/v1/forces/operations", json=spec, headers=QINGXI_DISPATCHER)
    assert opened.status_code == 201, opened.text
    oid = opened.json()["id"]

    in_time = await act(s, oid, "confirm", {"expected_version": 1, "people": [f"{ZFD}-m02"]}, unit(ZFD))
    assert in_time["confirmations"][ZFD]["late"] is False, "the lead unit confirmed before the start"
    await asyncio.sleep(max(0.0, (starts - datetime.now(UTC)).total_seconds()) + 0.5)  # past the start
    late = await act(s, oid, "confirm", {"expected_version": 2, "people": ["pcs-1"]}, unit(PCS))
    assert late["confirmations"][PCS]["late"] is True
    done = await act(s, oid, "conclude", {"expected_version": 3, "result": "已整治", "apply": "leave"}, unit(ZFD))
    assert (done["state"], done["absent"], done["confirmed_late"]) == ("concluded", [YJGL], [PCS])

    # The period: the month in which the station confirmed and the operation concluded (Beijing time).
    confirmed_at = datetime.fromisoformat(late["confirmations"][PCS]["at"]).astimezone(TZ)
    period = confirmed_at.strftime("%Y-%m")

    async def report() -> dict[str, Any] | None:
        r = await metrics.get("/v1/accountability", params={"period": period}, headers=QINGXI_ADMIN)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        joint = [f for f in body["findings"] if f["kind"].startswith("operation_")]
        return body if len(joint) == 2 else None

    body = await eventually(report, timeout_s=60, every_s=0.3)
    assert body["not_covered"] == [] and body["township"] == "330127101"
    joint = {(f["kind"], f["unit"]): f for f in body["findings"] if f["kind"].startswith("operation_")}
    assert set(joint) == {("operation_late", PCS), ("operation_absent", YJGL)}  # the team confirmed in time
    for finding in joint.values():
        assert (finding["township"], finding["count"], finding["cases"]) == ("330127101", 1, [case["id"]])
        [operation] = finding["operations"]
        assert (operation["operation_id"], operation["lead_unit"], operation["cases"]) == (oid, ZFD, [case["id"]])
    late_at = datetime.fromisoformat(joint[("operation_late", PCS)]["operations"][0]["at"])
    assert late_at == datetime.fromisoformat(late["confirmations"][PCS]["at"])  # the 报到's own time

    # The county sees the same two findings; 白沙街道's dispatcher sees none of 青溪镇's operation.
    county = await metrics.get("/v1/accountability", params={"period": period}, headers=COUNTY)
    assert [f for f in county.json()["findings"] if f["kind"].startswith("operation_")] == list(joint.values())
    other = await metrics.get("/v1/accountability", params={"period": period}, headers=BAISHA_DISPATCHER)
    assert [f for f in other.json()["findings"] if f["kind"].startswith("operation_")] == []
    # Stored once: 4 events (opened, two 报到, concluded) → 2 lapses.
    counts = await s.sql(
        "SELECT (SELECT count(*) FROM metrics.operation_events WHERE operation_id = :o),"
        " (SELECT count(*) FROM metrics.operation_lapses WHERE operation_id = :o)",
        o=oid,
    )
    assert tuple(counts[0]) == (4, 2)
