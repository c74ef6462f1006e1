"""Two-way assessment 双向考核 end to end: case events on a real broker → metrics → PostgreSQL →
``GET /v1/scores/department_report_in`` (townships score county departments on 报到) and
``GET /v1/scores/township_devolved`` (departments score the township's units on devolved matters only).

The cases are the pure test's scenario (``tests/unit/test_metrics_two_way.py``, where the hand
arithmetic is written out); here they travel as ``CaseEvent`` envelopes through the broker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest

from services.metrics.app import create_app
from services.metrics.settings import MetricsSettings
from shared.embedded import TansuBroker
from tests.helpers import eventually, serve
from tests.integration.test_metrics_service import CaseSim, fake_grid, publish, scalar
from tests.unit.test_metrics_two_way import KINDS, two_way_scenario

ADMIN = {"Authorization": "Bearer t-admin"}
GA = {"Authorization": "Bearer t-ga"}  # the county department's own staff 县级部门账号
T1 = {"Authorization": "Bearer t-t1"}  # T1's township admin 乡镇管理员
STAFF = orjson.dumps(
    {
        "t-admin": {"role": "admin", "township": "*"},
        "t-ga": {"role": "unit", "township": "*", "unit": "GA"},
        "t-t1": {"role": "township_admin", "township": "T1"},
    }
).decode()
UNITS: list[dict[str, Any]] = [
    {"id": "U1", "name": "青溪镇综合执法队", "kind": "enforcement_team", "township_code": "T1"},
    {"id": "GA", "name": "县公安局", "kind": "county_department"},
]


def scenario_sims() -> dict[str, CaseSim]:
    sims: dict[str, CaseSim] = {}

    def emit(name: str, type_: str, at: datetime, fields: dict[str, Any]) -> None:
        sims.setdefault(name, CaseSim(kinds=KINDS)).emit(type_, at, **fields)

    two_way_scenario(emit)
    return sims


@pytest.fixture(scope="module")
async def client(database_url: str, module_broker: TansuBroker) -> AsyncIterator[httpx.AsyncClient]:
    settings = MetricsSettings(
        database_url=database_url,
        kafka_bootstrap_servers=module_broker.bootstrap,
        staff_tokens=STAFF,
        grid_url="http://grid.test",
        grid_token="grid-token",
        log_json=False,
    )
    app = create_app(settings, grid_transport=fake_grid(UNITS))
    async with serve(app) as c:
        envelopes = [env for sim in scenario_sims().values() for env in sim.envelopes]
        await publish(module_broker.bootstrap, envelopes)

        async def all_consumed() -> bool:
            return bool(await scalar(database_url, "SELECT count(*) FROM metrics.case_events") == len(envelopes))

        await eventually(all_consumed, timeout_s=60, every_s=0.3)
        yield c


async def test_departments_scored_on_report_in_per_township(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/scores/department_report_in/2026-10", headers=ADMIN)
    assert response.status_code == 200, response.text
    rows = {(r["unit"], r["township"]): r for r in response.json()["rows"]}
    assert set(rows) == {("GA", "T1"), ("GA", "T2")}
    t1, t2 = rows[("GA", "T1")], rows[("GA", "T2")]
    # T1: 按时报到率 3/4 × 40 = 30; 办结率 3/4 × 30 = 22.5; 按期办结率 2/4 × 30 = 15 → 67.5 C
    assert (t1["cases"], t1["score"], t1["grade"], t1["unit_name"]) == (4, 67.5, "C", "县公安局")
    # T2: 2/3 × 40 + 2/3 × 30 + 2/3 × 30 = 66.67 C
    assert (t2["cases"], t2["score"], t2["grade"]) == (3, 66.67, "C")
    # the row's cases are T1's whistles only (g1, GA's own case, is not one)
    assert t1["cases_url"] == "/v1/scores/department_report_in/2026-10/GA/cases?township=T1"
    cases = (await client.get(t1["cases_url"], headers=ADMIN)).json()
    assert cases["total"] == 4
    # the department sees its 报到 score in each township; T1 sees how GA answered T1's whistles
    own = (await client.get("/v1/scores/department_report_in/2026-10", headers=GA)).json()["rows"]
    assert sorted((r["township"], r["score"]) for r in own) == [("T1", 67.5), ("T2", 66.67)]
    township = (await client.get("/v1/scores/department_report_in/2026-10", headers=T1)).json()["rows"]
    assert [(r["unit"], r["township"], r["score"]) for r in township] == [("GA", "T1", 67.5)]


async def test_township_units_scored_on_devolved_matters_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/scores/township_devolved/2026-10", headers=ADMIN)
    assert response.status_code == 200, response.text
    [u1] = response.json()["rows"]
    # 办结率 3/3 × 30 = 30; 按期 2/3 × 30 = 20; (1 − 1/3) × 20 × 2 = 26.67 → 76.67 B (n1, n2 not devolved)
    assert (u1["unit"], u1["cases"], u1["score"], u1["grade"]) == ("U1", 3, 76.67, "B")


async def test_two_way_presets_are_editable(client: httpx.AsyncClient) -> None:
    current = (await client.get("/v1/schemes/township_devolved", headers=ADMIN)).json()
    body = {
        key: current[key]
        for key in ("name", "kind", "unit_kinds", "population", "by_township", "min_cases", "grade_bands")
    }
    body["indicators"] = [
        {"indicator": "resolution_rate", "weight": 50},
        {"indicator": "ontime_resolution_rate", "weight": 50},
    ]
    put = await client.put("/v1/schemes/township_devolved", json=body, headers=ADMIN)
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 2
    [u1] = (await client.get("/v1/scores/township_devolved/2026-10", headers=ADMIN)).json()["rows"]
    # 办结率 3/3 × 50 = 50; 按期 2/3 × 50 = 33.33 → 83.33 B
    assert (u1["score"], u1["grade"]) == (83.33, "B")
