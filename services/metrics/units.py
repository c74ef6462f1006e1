"""Units directory 承办单位目录: names, kinds and townships from the grid service 网格服务.

``GET {grid_url}/v1/units`` (bearer token) is fetched at start-up, every
``units_refresh_s`` and whenever ``jurisdiction.changed`` arrives, then written to
``metrics.units`` so every replica and every SQL query (``coalesce(units.kind,
case_facts.unit_kind)``) sees the same directory.

The client is tolerant: the grid service may be down or not deployed yet — then the last
stored directory stays, and a unit's kind falls back to the ``unit_kind`` its case events
carry (dispatch fills it). It accepts a JSON list of units or an object holding one under
``units`` / ``items`` / ``data``, with the bundle's field names (``id``, ``name``, ``kind``,
``township_code``, ``department``, ``covers``) or close variants (``unit_id``, ``township``).
网格服务不可用时沿用已存目录，单位类型退回事件中携带的 ``unit_kind``。
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.metrics.models import units
from shared.logging import get_logger

log = get_logger(__name__)

__all__ = ["UnitDirectory", "parse_units", "unit_names"]


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def parse_units(payload: Any) -> list[dict[str, Any]]:
    """Grid's answer → ``metrics.units`` rows; entries without an id are skipped. 解析单位列表。"""
    items: Any = payload
    if isinstance(payload, Mapping):
        for key in ("units", "items", "data"):
            if isinstance(payload.get(key), list):
                items = payload[key]
                break
        else:
            items = []
    if not isinstance(items, list):
        return []
    rows: dict[str, dict[str, Any]] = {}
    for item in items:
        if not isinstance(item, Mapping):
            continue
        unit_id = _text(item.get("id")) or _text(item.get("unit_id"))
        if unit_id is None:
            continue
        covers = item.get("covers")
        rows[unit_id] = {
            "unit_id": unit_id,
            "name": _text(item.get("name")),
            "kind": _text(item.get("kind")) or _text(item.get("unit_kind")),
            "township_code": _text(item.get("township_code")) or _text(item.get("township")),
            "department": _text(item.get("department")),
            "covers": [c for c in covers if isinstance(c, str)] if isinstance(covers, list) else [],
        }
    return list(rows.values())


class UnitDirectory:
    """Fetches units from grid and keeps ``metrics.units`` current. 同步承办单位目录。"""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        grid_url: str,
        token: str,
        timeout_s: float,
        refresh_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.sessions = sessions
        self.grid_url = grid_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.refresh_s = refresh_s
        self.transport = transport
        self._wake = asyncio.Event()
        self.last_error: str | None = None
        self.last_count: int | None = None
        #: Set when grid answered 401/403: the service credential is wrong (a configuration error).
        self.refused: str | None = None

    def request_refresh(self) -> None:
        """Ask the loop to fetch now (e.g. on ``jurisdiction.changed``). 请求立即刷新。"""
        self._wake.set()

    async def fetch(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(
            base_url=self.grid_url,
            timeout=self.timeout_s,
            transport=self.transport,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as client:
            response = await client.get("/v1/units")
            response.raise_for_status()
            return parse_units(response.json())

    async def refresh(self) -> int | None:
        """Fetch and store the directory; ``None`` when grid could not be reached. 拉取并保存。"""
        try:
            rows = await self.fetch()
        except httpx.HTTPStatusError as exc:
            self.last_error = f"HTTP {exc.response.status_code} from grid"
            if exc.response.status_code in (401, 403):
                self.refused = (
                    f"grid refused the service token (HTTP {exc.response.status_code}): set SERVICE_TOKEN "
                    "(or METRICS_GRID_TOKEN) to a token of grid's STAFF_TOKENS that may read units"
                )
                self.last_error = self.refused
                log.error(self.refused)
            else:
                log.warning("grid units unavailable; keeping the stored directory", error=self.last_error)
            return None
        except (httpx.HTTPError, ValueError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("grid units unavailable; keeping the stored directory", error=self.last_error)
            return None
        if not rows:
            self.last_error = "grid returned no units"
            log.warning("grid returned no units; keeping the stored directory")
            return None
        async with self.sessions() as session, session.begin():
            stmt = pg_insert(units).values(rows)
            stmt = stmt.on_conflict_do_update(
                index_elements=[units.c.unit_id],
                set_={
                    **{c: stmt.excluded[c] for c in ("name", "kind", "township_code", "department", "covers")},
                    "updated_at": func.now(),
                },
            )
            await session.execute(stmt)  # units gone from grid stay: their past cases keep a name
        self.last_error = None
        self.refused = None
        self.last_count = len(rows)
        log.info("units directory refreshed", units=len(rows))
        return len(rows)

    async def run(self, *, refresh_first: bool = True) -> None:
        """Refresh (now, unless ``refresh_first`` is false), then every ``refresh_s`` or when woken.

        定期及按需刷新。
        """
        first = True
        while True:
            if refresh_first or not first:
                with contextlib.suppress(Exception):
                    await self.refresh()
            first = False
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.refresh_s)


async def unit_names(*, session: AsyncSession, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Stored directory entries of some units. 查询单位目录条目。"""
    if not ids:
        return {}
    rows = (await session.execute(select(units).where(units.c.unit_id.in_(ids)))).mappings().all()
    return {r["unit_id"]: dict(r) for r in rows}
