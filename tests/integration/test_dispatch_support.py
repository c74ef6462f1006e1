"""Shared set-up of the dispatch integration tests (no tests here). 派遣集成测试的公共部分（本文件无测试）。

The platform runs in-process: the REAL grid app (demo county imported through
``PUT /v1/jurisdiction``), the real intake app, and dispatch whose grid client
talks to the grid app through ``httpx.ASGITransport``; PostgreSQL and Tansu are
real (``tests/conftest.py``). 平台在进程内运行：真实网格服务、受理服务与派遣服务，
派遣经 ASGITransport 访问网格服务；PostgreSQL 与 Tansu 均为真实组件。
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy import text

from services.dispatch.app import create_app as create_dispatch
from services.dispatch.identity import case_id_for
from services.dispatch.settings import DispatchSettings
from services.grid.app import create_app as create_grid
from services.grid.settings import GridSettings
from services.intake.app import create_app as create_intake
from services.intake.schemas import EXAMPLES
from services.intake.settings import IntakeSettings
from shared.db import create_engine
from shared.events import CASE_EVENTS, decode_envelope, incident_event_id
from tests.conftest import read_topic
from tests.helpers import eventually, serve

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "deploy" / "demo" / "county.json").read_bytes()
COUNTY = "330127"
BAISHA, QINGXI, FENGLIN = "330127001", "330127101", "330127102"

KEYS = {"12345": "k-hotline", "cityops": "k-cityops", "gridworker": "k-grid", "approval": "k-approval",
        "alarm": "k-alarm"}
API_KEYS = orjson.dumps({s: [k] for s, k in KEYS.items()}).decode()
ID_FIELD = {"12345": "ticket_no", "cityops": "case_no", "gridworker": "report_id", "approval": "approval_no",
            "alarm": "alarm_id"}
UNITS = (
    "330127001-zfd",
    "330127101-zfd",
    "330127102-zfd",
    "330127101-yjgl",
    "330127001-csgl",
    "pz-pcs-qingxi",
    "pz-zrzys-qingxi",
    "dept-cgj",
    "dept-zjj",
    "dept-zrzyj",
    "pz-scjgs-qingxi",
    "330127102-yjgl",
    "dept-yjglj",
    "dept-slj",
)
STAFF_SPEC: dict[str, dict[str, str]] = {
    "t-admin": {"role": "admin", "township": "*"},
    "t-disp": {"role": "dispatcher", "township": "*"},
    "t-disp-qx": {"role": "dispatcher", "township": QINGXI},
    "t-disp-bs": {"role": "dispatcher", "township": BAISHA},
    "t-town-qx": {"role": "township_admin", "township": QINGXI},
    "t-hotline": {"role": "hotline", "township": "*"},
    **{f"u-{u}": {"role": "unit", "unit": u, "township": u[:9] if u[:9].isdigit() else "*"} for u in UNITS},
}
STAFF = orjson.dumps(STAFF_SPEC).decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer("t-admin")
DISPATCHER = bearer("t-disp")


def unit(unit_id: str) -> dict[str, str]:
    """Headers of the unit's staff token. 单位账号请求头。"""
    return bearer(f"u-{unit_id}")


_SPOTS = itertools.count(1)
SPOT_SPACING_M = 60.0


def shifted(location: dict[str, Any], *, east_m: float = 0.0, south_m: float = 0.0) -> dict[str, Any]:
    """``location`` moved by metres (any crs: a few metres of distortion do not matter). 位置平移。"""
    lat = location["lat"] - south_m / 111_320
    lng = location["lng"] + east_m / (111_320 * math.cos(math.radians(location["lat"])))
    return {**location, "lng": round(lng, 7), "lat": round(lat, 7)}


def record(source: str, *, example_spot: bool = False, **changes: Any) -> dict[str, Any]:
    """An intake example with a fresh source id, at a fresh spot (60 m apart, so nothing merges by
    accident) unless ``example_spot``. 带新来源编号的受理示例；默认每次换一个相距 60 米的位置，避免误并案。"""
    body = copy.deepcopy(EXAMPLES[source])
    body[ID_FIELD[source]] = f"{source}-{uuid.uuid4().hex[:10]}"
    if not example_spot:
        k = next(_SPOTS) % 75
        body["location"] = shifted(
            body["location"], east_m=(k // 15) * SPOT_SPACING_M, south_m=(k % 15) * SPOT_SPACING_M
        )
    if source == "12345":  # a fresh caller: the same phone in the same grid links as a repeat call
        body["caller"] = {**body["caller"], "phone": "13" + str(uuid.uuid4().int)[:9]}
    body.update(changes)
    return body


def incident_id(source: str, body: dict[str, Any]) -> uuid.UUID:
    return incident_event_id(source, body[ID_FIELD[source]])


@dataclass
class Stack:
    """The running platform of one test module. 一个测试模块运行的平台。"""

    database_url: str
    bootstrap: str
    grid_app: FastAPI
    grid: httpx.AsyncClient
    intake: httpx.AsyncClient
    dispatch_app: FastAPI
    dispatch: httpx.AsyncClient

    async def post(self, source: str, body: dict[str, Any]) -> uuid.UUID:
        """POST a record to intake; returns its incident id. 提交一条记录到受理服务。"""
        response = await self.intake.post(f"/v1/events/{source}", json=body, headers={"X-API-Key": KEYS[source]})
        assert response.status_code == 202, response.text
        return uuid.UUID(response.json()["event_id"])

    async def case_of(self, incident: uuid.UUID, timeout_s: float = 30.0) -> dict[str, Any]:
        """Wait for the case of ``incident`` and return it (admin view). 等待事件立案并返回案件。"""
        return await self.case_of_id(str(case_id_for(incident)), timeout_s)

    async def case_of_id(self, case_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
        """Wait for case ``case_id`` and return it (admin view). 等待案件出现并返回。"""

        async def check() -> dict[str, Any] | None:
            response = await self.dispatch.get(f"/v1/cases/{case_id}", headers=ADMIN)
            return response.json() if response.status_code == 200 else None

        found: dict[str, Any] = await eventually(check, timeout_s=timeout_s, every_s=0.2)
        return found

    async def sql(self, query: str, **params: Any) -> list[Any]:
        engine = create_engine(self.database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(text(query), params)).all())
        finally:
            await engine.dispose()


def dispatch_settings(database_url: str, bootstrap: str, **kw: Any) -> DispatchSettings:
    base: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": bootstrap,
        "staff_tokens": STAFF,
        "grid_url": "http://grid",
        "grid_token": "t-admin",
        "grid_retry_s": 0.2,
        "outbox_poll_interval_s": 0.1,
        "incident_group_id": f"dispatch-test-{uuid.uuid4().hex[:8]}",
        "overdue_sweep_interval_s": 0,
        "stream_poll_s": 0.1,
        "log_json": False,
    }
    base.update(kw)
    return DispatchSettings(**base)


@contextlib.asynccontextmanager
async def dispatch_instance(
    stack_grid_app: FastAPI, database_url: str, bootstrap: str, **kw: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """One more dispatch app on the same database and broker (a replica). 同库同代理的另一个派遣实例。"""
    app = create_dispatch(
        dispatch_settings(database_url, bootstrap, **kw), grid_transport=httpx.ASGITransport(app=stack_grid_app)
    )
    async with serve(app) as client:
        yield app, client


async def wait_ready(client: httpx.AsyncClient, timeout_s: float = 30.0) -> None:
    async def ready() -> bool:
        return (await client.get("/readyz")).status_code == 200

    await eventually(ready, timeout_s=timeout_s, every_s=0.1)


@contextlib.asynccontextmanager
async def platform(database_url: str, bootstrap: str, **dispatch_kw: Any) -> AsyncIterator[Stack]:
    """Grid (demo county imported), intake and dispatch, all running. 启动网格、受理与派遣。"""
    grid_app = create_grid(
        GridSettings(
            database_url=database_url,
            kafka_bootstrap_servers=bootstrap,
            staff_tokens=STAFF,
            outbox_poll_interval_s=0.1,
            log_json=False,
        )
    )
    intake_app = create_intake(
        IntakeSettings(
            database_url=database_url,
            kafka_bootstrap_servers=bootstrap,
            api_keys=API_KEYS,
            staff_tokens=STAFF,
            phone_hash_salt="test-salt",
            outbox_poll_interval_s=0.1,
            log_json=False,
        )
    )
    async with serve(grid_app) as grid, serve(intake_app) as intake:
        response = await grid.put(
            "/v1/jurisdiction", content=DEMO, headers={**ADMIN, "Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text
        async with dispatch_instance(grid_app, database_url, bootstrap, **dispatch_kw) as (dispatch_app, dispatch):
            await wait_ready(dispatch)
            yield Stack(database_url, bootstrap, grid_app, grid, intake, dispatch_app, dispatch)


async def case_events(bootstrap: str, case_ids: set[str], *, expect: int, timeout_s: float = 20.0) -> list[Any]:
    """Envelopes on case.events of these cases (waits until ``expect`` of them arrived). 读取案件事件。"""
    found: list[Any] = []

    async def check() -> bool:
        found.clear()
        for rec in await read_topic(bootstrap, CASE_EVENTS, expect=10**9, timeout_s=1.0):
            env = decode_envelope(rec.value)
            if str(env.data.case_id) in case_ids:
                found.append(env)
        return len(found) >= expect

    await eventually(check, timeout_s=timeout_s, every_s=0.3)
    return found
