"""The jurisdiction snapshot dispatch routes with, loaded from the grid service.

派遣所用的辖区快照：从网格服务加载，保存在内存中，收到 ``jurisdiction.changed`` 后重新加载。

``GET {grid_url}/v1/jurisdiction`` answers the bundle JSON (the exchange format
described in the team's domain notes) with a top-level ``version``; the rule-set
version comes as ``rules_version`` in the body or the ``X-Rules-Version``
header (the grid service sends the header). A body of the form ``{"bundle": {...},
"version": …}`` is accepted too. 兼容两种响应形态；规则集版本取自正文或响应头。

The snapshot is swapped atomically (one attribute assignment), so a routing call
always sees one consistent (bundle, rules) pair. 快照整体替换，路由调用看到的总是一致的版本。

Reloads run on the source's own task (:meth:`JurisdictionSource.keep_current`), asked for
with :meth:`JurisdictionSource.request_reload` once the transaction that learnt of a change
has committed: no HTTP call is ever made inside a database transaction.
重新加载在快照源自己的任务中进行（由提交后的请求触发），绝不在数据库事务内发起 HTTP 调用。
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.dispatch.routing_memo import RoutingMemo
from shared.calendar import WorkingCalendar, load_calendar, reload_calendar
from shared.jurisdiction import BundleInvalidError, JurisdictionBundle, JurisdictionSnapshot
from shared.logging import get_logger

log = get_logger(__name__)

__all__ = ["GridRefusedError", "GridUnavailableError", "JurisdictionSource", "LoadedJurisdiction", "parse_response"]


class GridUnavailableError(RuntimeError):
    """The grid service did not give a usable jurisdiction (down, 404, invalid). 网格服务不可用。"""


class GridRefusedError(GridUnavailableError):
    """Grid answered 401/403: the service token is wrong — a configuration error, not an outage.
    网格服务拒绝了服务令牌（配置错误）。"""


@dataclass(frozen=True)
class LoadedJurisdiction:
    """A snapshot and the working calendar of its county. 快照及其区县的工作日历。

    ``memo`` memoises routing's pure lookups on them (shared by the batches routed with this
    snapshot; replaced with it). 路由纯查询的记忆化对象，随快照一起替换。
    """

    snapshot: JurisdictionSnapshot
    calendar: WorkingCalendar
    memo: RoutingMemo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "memo", RoutingMemo(self.snapshot, self.calendar))


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and str(value).strip() != "" else None
    except (TypeError, ValueError):
        return None


def parse_response(body: Any, headers: httpx.Headers | dict[str, str] | None = None) -> JurisdictionSnapshot:
    """Build the snapshot from a ``GET /v1/jurisdiction`` answer (tolerant). 由响应构建快照（宽松解析）。

    Raises :class:`GridUnavailableError` when the body is not a usable bundle.
    """
    headers = headers or {}
    if not isinstance(body, dict):
        raise GridUnavailableError("jurisdiction response is not a JSON object")
    data = body.get("bundle") if isinstance(body.get("bundle"), dict) else body
    assert isinstance(data, dict)
    version = _int(body.get("version")) or _int(data.get("version")) or _int(headers.get("x-jurisdiction-version"))
    rules_version = (
        _int(body.get("rules_version")) or _int(data.get("rules_version")) or _int(headers.get("x-rules-version"))
    )
    if version is None:
        raise GridUnavailableError("jurisdiction response has no version")
    try:
        bundle = JurisdictionBundle.model_validate({k: v for k, v in data.items() if k != "rules_version"})
        return JurisdictionSnapshot(bundle, version=version, rules_version=rules_version or version)
    except BundleInvalidError as exc:
        raise GridUnavailableError(f"jurisdiction bundle is invalid: {exc}") from exc
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        raise GridUnavailableError(f"jurisdiction bundle does not parse: {exc}") from exc


class JurisdictionSource:
    """Holds the current snapshot; loads it from the grid service over HTTP. 持有当前快照并从网格服务加载。

    ``transport`` lets tests run the real grid app in-process
    (``httpx.ASGITransport(app=grid_app)``). 测试可传入 ASGI transport 在进程内调用网格服务。
    """

    def __init__(
        self,
        *,
        grid_url: str,
        token: str,
        county_code: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.grid_url = grid_url.rstrip("/")
        self.token = token
        self.county_code = county_code
        self.transport = transport
        self.timeout_s = timeout_s
        self.current: LoadedJurisdiction | None = None
        self.last_error: str | None = None
        self.loaded = asyncio.Event()
        self._lock = asyncio.Lock()
        self._reload_wanted = asyncio.Event()

    @property
    def snapshot(self) -> JurisdictionSnapshot | None:
        """The current snapshot, or ``None`` before the first load. 当前快照。"""
        return self.current.snapshot if self.current else None

    def set_snapshot(self, snapshot: JurisdictionSnapshot) -> None:
        """Install ``snapshot`` (and its county's calendar) atomically. 原子替换快照。"""
        calendar = load_calendar(county=snapshot.county_code)
        self.current = LoadedJurisdiction(snapshot, calendar)
        self.last_error = None
        self.loaded.set()

    def reload_calendar(self) -> WorkingCalendar | None:
        """Read the calendar override file again and install it with the current snapshot; the new
        calendar, or ``None`` before the first snapshot. 重新读取日历覆盖配置并随当前快照安装。

        Raises :class:`~shared.calendar_config.CalendarConfigError` (the file is unreadable or
        invalid; the calendar in use is kept)."""
        snapshot = self.snapshot
        if snapshot is None:
            return None
        calendar = reload_calendar(county=snapshot.county_code)
        self.current = LoadedJurisdiction(snapshot, calendar)
        return calendar

    def is_current(self, version: int, rules_version: int) -> bool:
        """Whether the loaded snapshot is at least (``version``, ``rules_version``). 是否已是该版本或更新。"""
        snap = self.snapshot
        return snap is not None and snap.version >= version and snap.rules_version >= rules_version

    async def fetch(self) -> JurisdictionSnapshot:
        """GET the jurisdiction and build a snapshot (does not install it). 获取并构建快照（不安装）。"""
        params = {"county": self.county_code} if self.county_code else None
        try:
            async with httpx.AsyncClient(
                base_url=self.grid_url, transport=self.transport, timeout=self.timeout_s
            ) as client:
                response = await client.get(
                    "/v1/jurisdiction", params=params, headers={"Authorization": f"Bearer {self.token}"}
                )
        except httpx.HTTPError as exc:
            raise GridUnavailableError(f"grid service unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403):
            raise GridRefusedError(
                f"grid refused the service token (HTTP {response.status_code}): set SERVICE_TOKEN "
                "(or DISPATCH_GRID_TOKEN) to a token of grid's STAFF_TOKENS that may read the jurisdiction"
            )
        if response.status_code != 200:
            raise GridUnavailableError(f"grid service answered {response.status_code}: {response.text[:300]}")
        try:
            body = response.json()
        except ValueError as exc:
            raise GridUnavailableError("grid service answered non-JSON") from exc
        return await asyncio.to_thread(parse_response, body, response.headers)

    async def reload(self) -> JurisdictionSnapshot:
        """Fetch and install the current jurisdiction (serialised). 获取并安装当前辖区（串行）。"""
        async with self._lock:
            try:
                snapshot = await self.fetch()
            except GridUnavailableError as exc:
                self.last_error = str(exc)
                raise
            previous = self.snapshot
            if previous is not None and (snapshot.version, snapshot.rules_version) < (
                previous.version,
                previous.rules_version,
            ):
                log.warning(
                    "grid answered an older jurisdiction; keeping the newer one",
                    loaded=f"v{previous.version}/r{previous.rules_version}",
                    answered=f"v{snapshot.version}/r{snapshot.rules_version}",
                )
                return previous
            self.set_snapshot(snapshot)
            log.info(
                "jurisdiction loaded",
                county=snapshot.county_code,
                version=snapshot.version,
                rules_version=snapshot.rules_version,
            )
            return snapshot

    def request_reload(self) -> None:
        """Ask :meth:`keep_current` to reload (e.g. after the commit that recorded a ``jurisdiction.changed``).
        请求重新加载（例如记录辖区变更的事务提交之后）。"""
        self._reload_wanted.set()

    async def keep_current(self, retry_s: float) -> None:
        """Reload whenever asked, retrying until the grid answers; runs for the life of the service.

        按请求重新加载，网格服务不可用时重试直至成功；随服务运行。A request made while a reload is
        under way causes one more reload after it (that reload may have fetched the older version);
        requests made meanwhile are coalesced. 重新加载期间到达的请求会在其后再加载一次，多个请求合并。
        """
        while True:
            await self._reload_wanted.wait()
            self._reload_wanted.clear()
            await self.load_until_ready(retry_s)

    async def load_until_ready(self, retry_s: float) -> JurisdictionSnapshot:
        """Retry :meth:`reload` until the grid answers. 重试直至网格服务给出辖区。"""
        while True:
            try:
                return await self.reload()
            except GridRefusedError as exc:
                log.error("jurisdiction not loaded: the service credential is refused", error=str(exc))
                await asyncio.sleep(retry_s)
            except GridUnavailableError as exc:
                log.warning("jurisdiction not loaded yet; retrying", error=str(exc), retry_s=retry_s)
                await asyncio.sleep(retry_s)
