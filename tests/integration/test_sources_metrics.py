"""Invalid reports, auto-recovered alarms and supervision tasks in the figures, end to end:
intake → broker → dispatch → broker → metrics, real PostgreSQL and Tansu.

Worker W reports three times in 枫林镇: one is dispatched and stays, one is marked invalid (不予立案) by a
dispatcher, one is self-handled. Hand count: the unit 330127102-zfd's incident indicators see 1 case
(the invalid one leaves them); W's 有效上报率 = (3 − 1) ÷ 3 = 0.6667, 自处置率 = 1 ÷ 3 = 0.3333.
A water-level alarm cleared before acceptance (自动恢复) is counted apart, never as a unit's case; an
approval's supervision task shows in the supervision figures only.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from shared.embedded import TansuBroker
from tests.helpers import eventually, serve
from tests.integration.test_dispatch_support import ADMIN, DISPATCHER, STAFF, Stack, platform, record

PERIOD = datetime.now(UTC).astimezone().strftime("%Y-%m")


@pytest.fixture(scope="module")
async def stack(database_url: str, module_broker: TansuBroker) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    async with platform(database_url, module_broker.bootstrap) as s:
        settings = MetricsSettings(
            database_url=database_url,
            kafka_bootstrap_servers=module_broker.bootstrap,
            staff_tokens=STAFF,
            grid_url="http://grid",
            grid_token="t-admin",
            revision_interval_s=0.2,
            log_json=False,
        )
        async with serve(create_metrics(settings, grid_transport=httpx.ASGITransport(app=s.grid_app))) as metrics:
            yield s, metrics


async def figures(metrics: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    response = await metrics.get(f"/v1/metrics/{name}", params={"period": PERIOD}, headers=ADMIN)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["rows"]
    return rows


async def test_invalid_leaves_the_unit_and_counts_in_the_workers_rate(stack: tuple[Stack, httpx.AsyncClient]) -> None:
    s, metrics = stack
    worker = f"GW-{uuid.uuid4().hex[:6]}"
    now = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    kept, dropped, solved = (
        record("gridworker", worker_id=worker, reported_at=now),
        record("gridworker", worker_id=worker, reported_at=now),
        record("gridworker", worker_id=worker, reported_at=now, self_handled=True),
    )
    cases = [await s.case_of(await s.post("gridworker", body)) for body in (kept, dropped, solved)]
    unit = cases[0]["unit"]
    assert cases[1]["unit"] == unit and cases[2]["state"] == "closed"
    invalid = await s.dispatch.post(
        f"/v1/cases/{cases[1]['id']}/actions/mark_invalid",
        json={"expected_version": cases[1]["version"], "reason": "not_a_problem", "note": "现场核实无此问题"},
        headers=DISPATCHER,
    )
    assert invalid.status_code == 200, invalid.text

    async def rates() -> Any:
        rows = [r for r in await figures(metrics, "reporters") if r["reporter_id"] == worker]
        return rows if rows and rows[0]["invalid"] == 1 and rows[0]["reports"] == 3 else None

    [row] = await eventually(rates, timeout_s=60, every_s=0.5)
    assert (row["valid_rate"], row["self_handled_rate"]) == (round(2 / 3, 4), round(1 / 3, 4))
    indicators = await metrics.get(
        "/v1/indicators", params={"period": PERIOD, "unit": unit, "group_by": "unit"}, headers=ADMIN
    )
    assert indicators.status_code == 200, indicators.text
    total = indicators.json()["total"]
    assert total["counts"]["dispatched"] == 1, total  # the invalid report left the unit's population


async def test_auto_recovered_and_supervision_are_counted_apart(stack: tuple[Stack, httpx.AsyncClient]) -> None:
    s, metrics = stack
    now = datetime.now(UTC) - timedelta(minutes=20)
    device = f"SW-{uuid.uuid4().hex[:6]}"
    body = record("alarm", example_spot=True, device_id=device, alarm_type="SW-HIGH", device_kind="water_level",
                  confidence=None, level="alarm", raised_at=now.isoformat())
    case = await s.case_of(await s.post("alarm", body))
    cleared = {**body, "cleared_at": (now + timedelta(minutes=5)).isoformat()}
    response = await s.intake.post("/v1/events/alarm", json=cleared, headers={"X-API-Key": "k-alarm"})
    assert response.json()["status"] == "updated"
    approval = record("approval", example_spot=True, approved_at=now.isoformat())
    task = await s.case_of(await s.post("approval", approval))

    async def counted() -> Any:
        recovered = [r for r in await figures(metrics, "auto-recovered") if r["unit"] == case["unit"]]
        tasks = [r for r in await figures(metrics, "supervision") if r["unit"] == task["unit"]]
        devices = [r for r in await figures(metrics, "devices") if r["device_id"] == device]
        return (recovered, tasks, devices) if recovered and tasks and devices else None

    recovered, tasks, devices = await eventually(counted, timeout_s=60, every_s=0.5)
    assert recovered[0]["auto_recovered"] == 1 and tasks[0]["tasks"] == 1 and tasks[0]["checked"] == 0
    assert devices[0]["auto_recovered"] == 1 and devices[0]["false_alarm_rate"] == 0
    for unit_id in (case["unit"], task["unit"]):
        indicators = await metrics.get(
            "/v1/indicators", params={"period": PERIOD, "unit": unit_id, "group_by": "unit"}, headers=ADMIN
        )
        assert indicators.json()["total"]["counts"]["dispatched"] == 0  # neither is one of the unit's incidents
