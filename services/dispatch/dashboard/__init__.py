"""Dispatcher dashboard (指挥中心调度台): static page at ``/dashboard`` plus same-origin helpers.

派遣服务自带的调度台网页：静态文件挂载在 ``/dashboard``，另有同源代理与两个小接口，
页面只与派遣服务一个源通信（政务内网，无 CDN）。

:func:`mount_dashboard` adds to a dispatch app:

* ``/dashboard/`` — the page (``static/``: HTML, one CSS file, vanilla ES modules; no build step).
* ``/dashboard/api/metrics/{path}`` → the metrics service, ``/dashboard/api/grid/{path}`` → the
  grid service: method, query, body and the caller's ``Authorization`` are forwarded; the answer
  is streamed back with its status, ``Content-Type`` and ``Content-Disposition`` (xlsx export).
  Only ``v1/…`` paths are forwarded. 仅转发 ``v1/…`` 路径，透传令牌与下载头。
* ``/dashboard/api/me`` — who the token is (role, township, unit) so the page can show its scope.
  当前令牌的角色与数据范围。
* ``/dashboard/api/calendar`` — working days and hours around today, so the page counts deadlines
  down in working time (工作时倒计时) with the same calendar dispatch uses.
  工作日历（工作日与工作时段），页面据此按工作时计算剩余时限。
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask

from services.dispatch.answers import CalendarAnswer, Me
from shared.answers import documented
from shared.auth import StaffPrincipal, current_staff
from shared.calendar import SHANGHAI, WorkingCalendar, load_calendar
from shared.errors import error_responses

__all__ = ["DASHBOARD_PATH", "STATIC_DIR", "DashboardState", "mount_dashboard"]

#: Where the page is served. 调度台路径。
DASHBOARD_PATH = "/dashboard"
#: The page's files. 静态文件目录。
STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Request headers forwarded to the upstream service. 转发的请求头。
_FORWARD_REQUEST = ("authorization", "content-type", "accept", "accept-language", "if-none-match", "x-request-id")
#: Response headers passed back to the page. 回传的响应头。
_FORWARD_RESPONSE = (
    "content-type",
    "content-disposition",
    "etag",
    "cache-control",
    "retry-after",
    "www-authenticate",
    "x-jurisdiction-version",
    "x-rules-version",
    "x-request-id",
)
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_SAFE_PATH = re.compile(r"^v1/[A-Za-z0-9._~:@!$&'()*+,;=/-]*$")
#: The calendar endpoint answers at most this many days. 日历接口最多返回的天数。
MAX_CALENDAR_DAYS = 800
#: … within these years. 日历接口可查询的年份范围。
CALENDAR_YEARS = (2000, 2099)


def _upstream_path(path: str) -> str:
    """The forwarded path, or 404 for anything but ``v1/…`` (no dot segments, no ``/metrics``). 校验转发路径。"""
    if not _SAFE_PATH.match(path) or any(part in (".", "..") for part in path.split("/")):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "only v1/… paths are forwarded 仅转发 v1 接口")
    return "/" + path


class _Upstream:
    """One upstream service reached through a lazily created, shared ``httpx.AsyncClient``. 上游服务。"""

    def __init__(self, name_zh: str, base_url: str, transport: httpx.AsyncBaseTransport | None) -> None:
        self.name_zh = name_zh
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                transport=self.transport,
                timeout=httpx.Timeout(30.0, connect=5.0),
                follow_redirects=False,
            )
        return self._client

    @property
    def is_open(self) -> bool:
        """Whether a client is open now. 客户端是否已打开。"""
        return self._client is not None and not self._client.is_closed

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def forward(self, request: Request, path: str) -> Response:
        """Send ``request`` on to ``path`` and stream the answer back. 转发请求并流式回传。"""
        upstream_path = _upstream_path(path)
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARD_REQUEST}
        body = await request.body()
        outgoing = self.client.build_request(
            request.method,
            upstream_path,
            params=list(request.query_params.multi_items()),
            headers=headers,
            content=body if body else None,
        )
        try:
            answer = await self.client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            return JSONResponse(
                {"detail": f"{self.name_zh}暂不可达，请稍后重试 / upstream unreachable: {type(exc).__name__}"},
                status_code=status.HTTP_502_BAD_GATEWAY,
            )
        passed = {k: v for k, v in answer.headers.items() if k.lower() in _FORWARD_RESPONSE}
        return StreamingResponse(
            answer.aiter_bytes(),
            status_code=answer.status_code,
            headers=passed,
            background=BackgroundTask(answer.aclose),
        )


@dataclass(frozen=True)
class DashboardState:
    """What :func:`mount_dashboard` keeps on ``app.state.dashboard``: the two upstreams. 调度台状态。"""

    metrics: _Upstream
    grid: _Upstream


def _calendar_of(app: FastAPI) -> WorkingCalendar:
    """The calendar dispatch computes deadlines with (its county's), else the default one. 派遣所用日历。"""
    ctx = getattr(app.state, "dispatch", None)
    source = getattr(ctx, "source", None)
    loaded = getattr(source, "current", None) if source is not None and getattr(source, "snapshot", None) else None
    calendar = getattr(loaded, "calendar", None)
    if isinstance(calendar, WorkingCalendar):
        return calendar
    return load_calendar()


def calendar_json(calendar: WorkingCalendar, start: date, end: date) -> dict[str, Any]:
    """Working days in ``[start, end]`` and the daily working periods. 区间内的工作日与工作时段。"""
    days: list[str] = []
    provisional: list[str] = []
    d = start
    while d <= end:
        if calendar.is_working_day(d):
            days.append(d.isoformat())
        if calendar.is_provisional(d):
            provisional.append(d.isoformat())
        d += timedelta(days=1)
    return {
        "time_zone": "Asia/Shanghai",
        "from": start.isoformat(),
        "to": end.isoformat(),
        "working_hours": [list(p) for p in calendar.rules.working_hours],
        "hours_per_day": calendar.hours_per_day,
        "working_days": days,
        "provisional_days": provisional,
    }


def _router(metrics: _Upstream, grid: _Upstream) -> APIRouter:
    router = APIRouter(include_in_schema=True, tags=["dashboard 调度台"])

    async def metrics_proxy(request: Request, path: str) -> Response:
        return await metrics.forward(request, path)

    async def grid_proxy(request: Request, path: str) -> Response:
        return await grid.forward(request, path)

    for name, endpoint, summary in (
        ("metrics", metrics_proxy, "Same-origin proxy to the metrics service 绩效服务代理"),
        ("grid", grid_proxy, "Same-origin proxy to the grid service 网格服务代理"),
    ):
        for method in _METHODS:  # one operation per method: distinct operation ids
            router.add_api_route(
                f"{DASHBOARD_PATH}/api/{name}/{{path:path}}",
                endpoint,
                methods=[method],
                operation_id=f"{name}_proxy_{method.lower()}",
                summary=summary,
                description="Forwards method, query, body and `Authorization` to the service's `/v1/…` path and "
                "answers what it answers (status, `Content-Type`, `Content-Disposition`).",
                responses={
                    200: {"content": {"application/json": {}, "text/csv": {}, _XLSX: {}}},
                    **error_responses(401, 403, 404, 409, 413, 415, 422, 502, 503),
                },
            )

    @router.get(
        f"{DASHBOARD_PATH}/api/me",
        **documented(Me),
        summary="The signed-in staff token's role and scope 当前账号与数据范围",
    )
    async def me(principal: StaffPrincipal = Depends(current_staff)) -> dict[str, Any]:
        return {
            "token_name": principal.token_name,
            "role": principal.role,
            "township": principal.township,
            "unit": principal.unit,
            "member": principal.member,
            "whole_county": principal.whole_county,
        }

    @router.get(
        f"{DASHBOARD_PATH}/api/calendar",
        **documented(CalendarAnswer),
        summary="Working days and hours (Asia/Shanghai) for working-time countdowns 工作日历",
    )
    async def calendar(
        request: Request,
        from_: Annotated[date | None, Query(alias="from", description="first day (default: 45 days ago)")] = None,
        to: Annotated[date | None, Query(description="last day (default: 120 days ahead)")] = None,
        _: StaffPrincipal = Depends(current_staff),
    ) -> dict[str, Any]:
        today = datetime.now(SHANGHAI).date()
        start = from_ or today - timedelta(days=45)
        end = to or today + timedelta(days=120)
        if not (CALENDAR_YEARS[0] <= start.year and end.year <= CALENDAR_YEARS[1]):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"from/to must lie in {CALENDAR_YEARS[0]}–{CALENDAR_YEARS[1]} 日期超出范围",
            )
        if end < start or (end - start).days > MAX_CALENDAR_DAYS:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"from..to must be 0..{MAX_CALENDAR_DAYS} days 日期区间无效"
            )
        return calendar_json(_calendar_of(request.app), start, end)

    return router


def _close_on_shutdown(app: FastAPI, closers: list[Callable[[], Any]]) -> None:
    """Wrap the app's lifespan so the proxy clients are closed when it stops. 停止时关闭代理客户端。"""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state:
            try:
                yield state
            finally:
                for close in closers:
                    with contextlib.suppress(Exception):
                        await close()

    app.router.lifespan_context = lifespan


def mount_dashboard(
    app: FastAPI,
    *,
    metrics_url: str,
    grid_url: str,
    metrics_transport: httpx.AsyncBaseTransport | None = None,
    grid_transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """Serve the dashboard at ``/dashboard`` and its same-origin proxies. 挂载调度台及同源代理。

    Call once, after the app's own routers are included. ``*_transport`` lets tests reach
    in-process apps (``httpx.ASGITransport``). 在应用路由注册后调用一次；测试可传入 transport。
    """
    metrics = _Upstream("绩效服务", metrics_url, metrics_transport)
    grid = _Upstream("网格服务", grid_url, grid_transport)
    app.include_router(_router(metrics, grid))  # API routes first: the static mount takes the rest
    app.mount(DASHBOARD_PATH, StaticFiles(directory=STATIC_DIR, html=True), name="dashboard")
    _close_on_shutdown(app, [metrics.close, grid.close])
    app.state.dashboard = DashboardState(metrics=metrics, grid=grid)
