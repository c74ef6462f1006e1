"""One service credential (服务间令牌): a refused one stops dispatch and metrics at start-up,
loudly, instead of a silent retry loop; an accepted one loads the jurisdiction and the units."""

from __future__ import annotations

import httpx
import orjson
import pytest
from fastapi import FastAPI

from services.dispatch.app import create_app as create_dispatch
from services.dispatch.settings import DispatchSettings
from services.grid.app import create_app as create_grid
from services.grid.settings import GridSettings
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from shared.embedded import TansuBroker
from tests.helpers import serve

DEMO = (__import__("pathlib").Path(__file__).resolve().parents[2] / "deploy" / "demo" / "county.json").read_bytes()
STAFF = orjson.dumps(
    {
        "svc": {"role": "admin", "township": "*"},
        "t-unit": {"role": "unit", "township": "330127101", "unit": "330127101-zfd"},
    }
).decode()


def _grid(database_url: str, bootstrap: str) -> FastAPI:
    return create_grid(
        GridSettings(database_url=database_url, kafka_bootstrap_servers=bootstrap, staff_tokens=STAFF, log_json=False)
    )


@pytest.mark.parametrize("token", ["not-a-token", "dev-admin"])
async def test_dispatch_refuses_to_start_when_grid_refuses_its_token(
    database_url: str, kafka: TansuBroker, token: str
) -> None:
    grid_app = _grid(database_url, kafka.bootstrap)
    async with serve(grid_app) as grid:
        loaded = await grid.put(
            "/v1/jurisdiction",
            content=DEMO,
            headers={"Authorization": "Bearer svc", "Content-Type": "application/json"},
        )
        assert loaded.status_code == 200, loaded.text
        app = create_dispatch(
            DispatchSettings(
                database_url=database_url,
                kafka_bootstrap_servers=kafka.bootstrap,
                staff_tokens=STAFF,
                service_token=token,
                grid_url="http://grid",
                grid_retry_s=0.2,
                overdue_sweep_interval_s=0,
                log_json=False,
            ),
            grid_transport=httpx.ASGITransport(app=grid_app),
        )
        with pytest.raises(RuntimeError, match=r"grid refused the service token \(HTTP 40[13]\).*SERVICE_TOKEN"):
            async with serve(app):
                pass
        accepted = create_dispatch(
            DispatchSettings(
                database_url=database_url,
                kafka_bootstrap_servers=kafka.bootstrap,
                staff_tokens=STAFF,
                service_token="svc",
                grid_url="http://grid",
                overdue_sweep_interval_s=0,
                log_json=False,
            ),
            grid_transport=httpx.ASGITransport(app=grid_app),
        )
        async with serve(accepted):
            snapshot = accepted.state.dispatch.source.snapshot
            assert snapshot is not None and snapshot.county_code == "330127"


@pytest.mark.parametrize("token", ["not-a-token", "dev-admin"])
async def test_metrics_refuses_to_start_when_grid_refuses_its_token(
    database_url: str, kafka: TansuBroker, token: str
) -> None:
    grid_app = _grid(database_url, kafka.bootstrap)
    async with serve(grid_app):
        app = create_metrics(
            MetricsSettings(
                database_url=database_url,
                kafka_bootstrap_servers=kafka.bootstrap,
                staff_tokens=STAFF,
                service_token=token,
                grid_url="http://grid",
                consume=False,
                log_json=False,
            ),
            grid_transport=httpx.ASGITransport(app=grid_app),
        )
        with pytest.raises(RuntimeError, match=r"grid refused the service token \(HTTP 40[13]\)"):
            async with serve(app):
                pass
