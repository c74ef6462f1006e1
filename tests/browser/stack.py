"""The four services for real, on free loopback ports, for the browser tests (no tests here).

浏览器测试用的完整平台：受理、网格、派遣（含调度台）、绩效四个服务在本机空闲端口上真实运行。

Each service is a ``uvicorn.Server`` serving its app factory's app on a socket bound to
``127.0.0.1:0`` (so no port race), as a task on the running event loop; PostgreSQL and Tansu come
from ``tests/conftest.py``. The demo county 青溪县 is loaded into grid with
``services.grid.load_demo.put_bundle``; dispatch finds grid by URL and the dashboard finds
metrics by URL, exactly as in ``make run``.

Standalone (to look at the page by hand, or to refresh ``docs/screenshots``)::

    .venv/bin/python -m tests.browser.stack      # prints the dashboard URL and tokens; Ctrl-C stops
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import uvicorn
from fastapi import FastAPI

from services.dispatch.app import create_app as create_dispatch
from services.dispatch.settings import DispatchSettings
from services.grid.app import create_app as create_grid
from services.grid.load_demo import put_bundle, read_bundle
from services.grid.settings import GridSettings
from services.intake.app import create_app as create_intake
from services.intake.schemas import EXAMPLES
from services.intake.settings import IntakeSettings
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings
from shared.calendar import SHANGHAI

BAISHA, QINGXI, FENGLIN = "330127001", "330127101", "330127102"
KEYS = {"12345": "k-hotline", "cityops": "k-cityops", "gridworker": "k-grid", "approval": "k-approval",
        "alarm": "k-alarm"}
ID_FIELD = {"12345": "ticket_no", "cityops": "case_no", "gridworker": "report_id", "approval": "approval_no",
            "alarm": "alarm_id"}
SPOT_SPACING_M = 60.0
TIME_FIELD = {"12345": "received_at", "cityops": "reported_at", "gridworker": "reported_at",
              "approval": "approved_at", "alarm": "raised_at"}

#: Staff tokens of the browser tests. 浏览器测试用工作人员令牌。
STAFF_SPEC: dict[str, dict[str, str]] = {
    "t-admin": {"role": "admin", "township": "*"},
    "t-disp": {"role": "dispatcher", "township": "*"},
    "t-disp-qx": {"role": "dispatcher", "township": QINGXI},
    "t-town-qx": {"role": "township_admin", "township": QINGXI},
    "t-hotline": {"role": "hotline", "township": "*"},
    "u-qx-zfd": {"role": "unit", "township": QINGXI, "unit": "330127101-zfd"},
    "u-bs-zfd": {"role": "unit", "township": BAISHA, "unit": "330127001-zfd"},
    "u-cgj": {"role": "unit", "township": "*", "unit": "dept-cgj"},
    "m-qx-zfd-02": {"role": "member", "township": QINGXI, "unit": "330127101-zfd", "member": "330127101-zfd-m02"},
}
STAFF = orjson.dumps(STAFF_SPEC).decode()
API_KEYS = orjson.dumps({s: [k] for s, k in KEYS.items()}).decode()


class _Server(uvicorn.Server):
    """uvicorn without its signal handling (it runs as a task inside the test's loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Served:
    """One app served on a loopback socket. 在回环地址上运行的一个应用。"""

    name: str
    app: FastAPI
    sock: socket.socket
    server: _Server
    task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def create(cls, name: str, app: FastAPI) -> Served:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=3)
        return cls(name, app, sock, _Server(config))

    async def start(self, timeout_s: float = 30.0) -> None:
        self.task = asyncio.ensure_future(self.server.serve(sockets=[self.sock]))
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self.server.started:
            if self.task.done():
                self.task.result()  # raises what stopped it
                raise RuntimeError(f"{self.name} stopped during start-up")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{self.name} did not start within {timeout_s}s")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, 15)
        self.sock.close()


@dataclass
class Platform:
    """The running services and a client to drive them. 运行中的平台。"""

    intake: Served
    grid: Served
    dispatch: Served
    metrics: Served
    http: httpx.AsyncClient
    posted: list[str] = field(default_factory=list)

    @property
    def dashboard_url(self) -> str:
        return f"{self.dispatch.url}/dashboard/"

    async def post_record(self, source: str, **changes: Any) -> str:
        """POST an intake example (fresh id, reported now) with ``changes``; returns the source id. 提交一条记录。"""
        body = copy.deepcopy(EXAMPLES[source])
        source_id = f"{source.upper()}-{uuid.uuid4().hex[:8].upper()}"
        body[ID_FIELD[source]] = source_id
        body[TIME_FIELD[source]] = (datetime.now(SHANGHAI) - timedelta(seconds=5)).isoformat(timespec="seconds")
        if source == "12345":
            body["caller"] = {**body["caller"], "phone": "139" + str(uuid.uuid4().int)[:8]}
        # A fresh spot each time — 60 m further east, a new row 60 m further south every 12 records — so
        # nothing merges as a duplicate by accident (the demo points stay in their township).
        # 每条记录换一个位置（向东 60 米，每 12 条向南换一行），避免被误判为重复件而并案。
        n = len(self.posted)
        east_m, south_m = SPOT_SPACING_M * (n % 12 + 1), SPOT_SPACING_M * (n // 12)
        location = body["location"]
        lng = location["lng"] + east_m / (111_320 * math.cos(math.radians(location["lat"])))
        lat = location["lat"] - south_m / 111_320
        body["location"] = {**location, "lng": round(lng, 7), "lat": round(lat, 7)}
        body.update(changes)
        response = await self.http.post(
            f"{self.intake.url}/v1/events/{source}", json=body, headers={"X-API-Key": KEYS[source]}
        )
        assert response.status_code == 202, response.text
        self.posted.append(source_id)
        return source_id

    async def case_by_source_id(
        self, source_id: str, token: str = "t-admin", timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """Wait until dispatch has the case of ``source_id``; return its list row. 等待立案。"""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            response = await self.http.get(
                f"{self.dispatch.url}/v1/cases",
                params={"source_id": source_id},
                headers={"Authorization": f"Bearer {token}"},
            )
            items = response.json().get("items", []) if response.status_code == 200 else []
            if items:
                found: dict[str, Any] = items[0]
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no case for {source_id} within {timeout_s}s: {response.text[:300]}")
            await asyncio.sleep(0.2)

    async def act(self, case_id: str, action: str, token: str, **body: Any) -> dict[str, Any]:
        """Perform a lifecycle action through the API. 通过接口执行流转操作。"""
        detail = await self.http.get(
            f"{self.dispatch.url}/v1/cases/{case_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert detail.status_code == 200, detail.text
        response = await self.http.post(
            f"{self.dispatch.url}/v1/cases/{case_id}/actions/{action}",
            json={**body, "expected_version": detail.json()["version"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


async def _wait(client: httpx.AsyncClient, url: str, timeout_s: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    last = ""
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            response = await client.get(url)
            if response.status_code == 200:
                return
            last = response.text[:300]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} not ready within {timeout_s}s: {last}")


@contextlib.asynccontextmanager
async def running_platform(database_url: str, bootstrap: str) -> AsyncIterator[Platform]:
    """Start intake, grid (demo county loaded), metrics and dispatch (with the dashboard). 启动平台。"""
    common: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": bootstrap,
        "staff_tokens": STAFF,
        "outbox_poll_interval_s": 0.1,
        "log_json": False,
        "log_level": "WARNING",
    }
    suffix = uuid.uuid4().hex[:8]
    grid = Served.create("grid", create_grid(GridSettings(**common)))
    intake = Served.create(
        "intake", create_intake(IntakeSettings(**common, api_keys=API_KEYS, phone_hash_salt="browser-test"))
    )
    started: list[Served] = []
    async with httpx.AsyncClient(timeout=30) as http:
        try:
            for served in (grid, intake):
                await served.start()
                started.append(served)
            async with httpx.AsyncClient(base_url=grid.url, timeout=60) as grid_client:
                await put_bundle(grid_client, read_bundle(), token="t-admin")
            metrics = Served.create(
                "metrics",
                create_metrics(
                    MetricsSettings(
                        **common,
                        grid_url=grid.url,
                        grid_token="t-admin",
                        consumer_group=f"metrics-browser-{suffix}",
                        revision_interval_s=1.0,
                    )
                ),
            )
            await metrics.start()
            started.append(metrics)
            dispatch_settings = DispatchSettings(
                **common,
                grid_url=grid.url,
                grid_token="t-admin",
                grid_retry_s=0.2,
                incident_group_id=f"dispatch-browser-{suffix}",
                overdue_sweep_interval_s=2.0,
                stream_poll_s=0.2,
                metrics_url=metrics.url,
            )
            dispatch = Served.create("dispatch", create_dispatch(dispatch_settings))
            await dispatch.start()
            started.append(dispatch)
            await _wait(http, f"{dispatch.url}/readyz")
            await _wait(http, f"{metrics.url}/healthz")
            yield Platform(intake=intake, grid=grid, dispatch=dispatch, metrics=metrics, http=http)
        finally:
            for served in reversed(started):
                await served.stop()


async def _main() -> None:  # pragma: no cover - manual use
    import os
    import signal
    import tempfile
    from pathlib import Path

    from shared.embedded import MACHINE_POSTGRES, EmbeddedPostgres, TansuBroker, can_connect_async
    from tests.conftest import create_database, drop_database

    server = os.environ.get("TEST_DATABASE_URL") or (
        MACHINE_POSTGRES if await can_connect_async(MACHINE_POSTGRES) else None
    )
    pg = None
    if server is None:
        pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="zhpt-pg-")) / "data")
        server = pg.start()
    broker = TansuBroker()
    broker.start()
    url = await create_database(server)
    try:
        async with running_platform(url, broker.bootstrap) as platform:
            for source in ("12345", "cityops", "gridworker"):
                await platform.post_record(source)
            await platform.post_record("12345", category_code="999999", title="青溪镇来电反映：无法归类的诉求")
            print(f"dashboard: {platform.dashboard_url}")
            print("tokens:", ", ".join(STAFF_SPEC))
            stop = asyncio.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(signum, stop.set)
            await stop.wait()  # Ctrl-C: stop the services, then the broker and the database
            print("stopping…")
    finally:
        await drop_database(server, url)
        broker.stop()
        if pg is not None:
            pg.stop()


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(_main())
