"""``mount_dashboard`` without a browser: static files, same-origin proxies, ``/me`` and the calendar.

调度台挂载（无浏览器）：静态文件、同源代理、当前账号与工作日历接口。
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from services.dispatch.dashboard import STATIC_DIR, mount_dashboard
from shared.auth import StaffDirectory
from tests.helpers import serve

TOKENS = {"tok-disp": {"role": "dispatcher", "township": "330127101"}}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Upstream:
    """A fake upstream service recording what reached it. 记录请求的假上游服务。"""

    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.seen: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if self.fail:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path.endswith(".xlsx"):
            return httpx.Response(
                200,
                content=b"PK\x03\x04xlsx-bytes",
                headers={
                    "Content-Type": XLSX,
                    "Content-Disposition": "attachment; filename=\"a.xlsx\"; filename*=UTF-8''%E8%80%83%E6%A0%B8.xlsx",
                    "Set-Cookie": "secret=1",
                },
            )
        if request.url.path.endswith("/conflict"):
            return httpx.Response(409, json={"detail": "版本冲突"})
        return httpx.Response(200, json={"upstream": self.name, "path": request.url.path})


def build(metrics: Upstream, grid: Upstream) -> FastAPI:
    app = FastAPI()
    app.state.staff = StaffDirectory(orjson.dumps(TOKENS).decode())
    mount_dashboard(
        app,
        metrics_url="http://metrics.internal:8004",
        grid_url="http://grid.internal:8003/",
        metrics_transport=httpx.MockTransport(metrics.handler),
        grid_transport=httpx.MockTransport(grid.handler),
    )
    return app


@pytest.fixture
async def setup() -> AsyncIterator[tuple[httpx.AsyncClient, Upstream, Upstream]]:
    metrics, grid = Upstream("metrics"), Upstream("grid")
    async with serve(build(metrics, grid)) as client:
        yield client, metrics, grid


AUTH = {"Authorization": "Bearer tok-disp"}


async def test_page_is_served_at_dashboard(setup: tuple[httpx.AsyncClient, Upstream, Upstream]) -> None:
    client, _, _ = setup
    redirect = await client.get("/dashboard")
    assert redirect.status_code in (301, 307, 308) and redirect.headers["location"].endswith("/dashboard/")
    page = await client.get("/dashboard/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in page.text and 'src="js/app.js"' in page.text
    css = await client.get("/dashboard/css/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = await client.get("/dashboard/js/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]


def test_every_asset_is_local_and_every_module_import_resolves() -> None:
    """No CDN at run time: nothing but the SVG namespace names another host; imports exist."""
    files = [p for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".html", ".css", ".js"}, files
    for path in files:
        text = path.read_text(encoding="utf-8")
        hosts = set(re.findall(r"(?:https?:)?//([A-Za-z0-9.-]+\.[A-Za-z]{2,})", text)) - {"www.w3.org"}
        assert not hosts, f"{path.name} refers to {hosts}"
        assert "@import url(" not in text
        if path.suffix == ".js":
            for target in re.findall(r"""^import .* from "(\.[^"]+)";$""", text, flags=re.M):
                assert (path.parent / target).resolve().is_file(), f"{path.name}: import {target} does not exist"


async def test_proxy_forwards_method_query_body_and_token(setup: tuple[httpx.AsyncClient, Upstream, Upstream]) -> None:
    client, metrics, grid = setup
    response = await client.post(
        "/dashboard/api/metrics/v1/ratings/2026-11/330127101/pz-pcs?x=1&x=2&y=%E9%9D%92",
        json={"rating": 90},
        headers={**AUTH, "Cookie": "session=abc", "X-Other": "no"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"upstream": "metrics", "path": "/v1/ratings/2026-11/330127101/pz-pcs"}
    sent = metrics.seen[-1]
    assert sent.method == "POST"
    assert sent.url.host == "metrics.internal" and sent.url.port == 8004
    assert sent.url.params.get_list("x") == ["1", "2"] and sent.url.params["y"] == "青"
    assert orjson.loads(sent.content) == {"rating": 90}
    assert sent.headers["authorization"] == "Bearer tok-disp"
    assert "cookie" not in sent.headers and "x-other" not in sent.headers

    divisions = await client.get("/dashboard/api/grid/v1/divisions", params={"level": "grid"}, headers=AUTH)
    assert divisions.json()["upstream"] == "grid" and grid.seen[-1].url.path == "/v1/divisions"


async def test_proxy_keeps_status_content_type_and_disposition(
    setup: tuple[httpx.AsyncClient, Upstream, Upstream],
) -> None:
    client, _, _ = setup
    export = await client.get("/dashboard/api/metrics/v1/export/scheme/2026-11.xlsx", headers=AUTH)
    assert export.status_code == 200
    assert export.headers["content-type"] == XLSX
    assert "filename*=UTF-8''%E8%80%83%E6%A0%B8.xlsx" in export.headers["content-disposition"]
    assert "set-cookie" not in export.headers
    assert export.content == b"PK\x03\x04xlsx-bytes"
    conflict = await client.get("/dashboard/api/metrics/v1/conflict", headers=AUTH)
    assert conflict.status_code == 409 and conflict.json() == {"detail": "版本冲突"}


@pytest.mark.parametrize(
    "path", ["metrics", "healthz", "docs", "v2/x", "v1/../metrics", "v1/a/../../metrics", "v1/%2e%2e/metrics"]
)
async def test_proxy_forwards_only_v1_paths(setup: tuple[httpx.AsyncClient, Upstream, Upstream], path: str) -> None:
    client, metrics, _ = setup
    response = await client.get(f"/dashboard/api/metrics/{path}", headers=AUTH)
    assert response.status_code == 404, (path, response.text)
    assert not metrics.seen


async def test_unreachable_upstream_is_a_502_in_chinese() -> None:
    metrics, grid = Upstream("metrics", fail=True), Upstream("grid")
    async with serve(build(metrics, grid)) as client:
        response = await client.get("/dashboard/api/metrics/v1/schemes", headers=AUTH)
    assert response.status_code == 502
    assert "绩效服务暂不可达" in response.json()["detail"]


async def test_me_answers_the_token_scope(setup: tuple[httpx.AsyncClient, Upstream, Upstream]) -> None:
    client, _, _ = setup
    me = await client.get("/dashboard/api/me", headers=AUTH)
    assert me.json() == {
        "token_name": "tok-…",
        "role": "dispatcher",
        "township": "330127101",
        "unit": None,
        "member": None,
        "whole_county": False,
    }
    assert (await client.get("/dashboard/api/me")).status_code == 401
    assert (await client.get("/dashboard/api/me", headers={"Authorization": "Bearer nope"})).status_code == 401


async def test_calendar_has_statutory_holidays_and_make_up_days(
    setup: tuple[httpx.AsyncClient, Upstream, Upstream],
) -> None:
    client, _, _ = setup
    response = await client.get(
        "/dashboard/api/calendar", params={"from": "2025-09-26", "to": "2025-10-09"}, headers=AUTH
    )
    body: dict[str, Any] = response.json()
    assert response.status_code == 200, body
    assert body["working_hours"] == [["08:30", "12:00"], ["13:30", "17:30"]] and body["hours_per_day"] == 7.5
    days = set(body["working_days"])
    assert "2025-09-28" in days  # Sunday make-up working day 调休上班
    assert "2025-10-01" not in days and "2025-10-08" not in days  # 国庆中秋假期
    assert "2025-10-09" in days
    too_long = await client.get(
        "/dashboard/api/calendar", params={"from": "2020-01-01", "to": "2026-01-01"}, headers=AUTH
    )
    assert too_long.status_code == 422
    assert (await client.get("/dashboard/api/calendar")).status_code == 401


async def test_proxy_clients_are_closed_with_the_app() -> None:
    metrics, grid = Upstream("metrics"), Upstream("grid")
    app = build(metrics, grid)
    async with serve(app) as client:
        await client.get("/dashboard/api/metrics/v1/schemes", headers=AUTH)
        assert app.state.dashboard.metrics.is_open
    assert not app.state.dashboard.metrics.is_open and not app.state.dashboard.grid.is_open
    async with serve(app) as client:  # started again: a fresh client on demand 再次启动可继续使用
        assert (await client.get("/dashboard/api/metrics/v1/schemes", headers=AUTH)).status_code == 200
