"""Grid service (网格服务 / 辖区登记): counties' jurisdictions, versioned, with a point locator.

网格服务：各区县辖区数据（含版本）登记、导入导出、派遣规则维护与点位定位。

Run: ``uvicorn --factory services.grid.app:create_app --port 8003`` (``make run`` does it),
then ``python -m services.grid.load_demo`` to import the demo county 青溪县.

At start-up every county's current snapshot is loaded from the database; after
each committed change the new snapshot replaces the old one atomically. A
background loop picks up changes made by other replicas every
``GRID_SNAPSHOT_REFRESH_S`` seconds. 启动时从数据库加载各区县快照；每次变更提交后
原子替换；后台循环定期获取其他副本所作的变更。
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from prometheus_client import Counter, Gauge

from services.grid.api import router
from services.grid.api_devolution import router as devolution_router
from services.grid.models import metadata
from services.grid.registry import SnapshotRegistry
from services.grid.service import refresh_registry
from services.grid.settings import GridSettings
from shared.logging import get_logger
from shared.service import Check, ServiceRuntime, create_service_app

log = get_logger(__name__)


async def _refresh(runtime: ServiceRuntime, registry: SnapshotRegistry) -> list[str]:
    """Load counties changed in the database into the registry. 从数据库加载有变化的区县。"""
    async with runtime.uow() as uow:
        return await refresh_registry(session=uow.session, registry=registry)


def create_app(settings: GridSettings | None = None) -> FastAPI:
    """Build the grid service app (factory for uvicorn and tests). 构建网格服务应用。"""
    settings = settings or GridSettings()
    runtime = ServiceRuntime(settings, service="grid", metadata=metadata)
    runtime.use_outbox()
    registry = SnapshotRegistry()
    versions = Gauge(
        "grid_jurisdiction_version",
        "Current jurisdiction version per county 各区县当前辖区版本",
        ["county", "kind"],
        registry=runtime.registry,
    )

    async def refresh_once() -> None:
        try:
            refreshed = await _refresh(runtime, registry)
        except Exception as exc:  # database down: keep serving what we have / 数据库不可用时继续使用现有快照
            log.warning("jurisdiction refresh failed", error=repr(exc))
            return
        if refreshed:
            log.info("jurisdiction snapshots loaded", counties=refreshed)

    async def refresh_loop() -> None:
        while True:
            await asyncio.sleep(settings.snapshot_refresh_s)
            await refresh_once()

    async def on_start() -> None:
        await refresh_once()
        if settings.snapshot_refresh_s > 0:
            runtime.spawn(refresh_loop(), "grid-snapshot-refresh")

    async def jurisdiction_check() -> Check:
        codes = registry.codes()
        if not codes:
            return Check(False, "no county jurisdiction loaded yet (PUT /v1/jurisdiction)", required=False)
        parts = []
        for code in codes:
            snap = registry.get(code)
            if snap is not None:
                parts.append(f"{code} v{snap.version}/r{snap.rules_version}")
        return Check(True, "; ".join(parts), required=False)

    async def before_scrape() -> None:
        for code, snap in registry.snapshots().items():
            versions.labels(code, "bundle").set(snap.version)
            versions.labels(code, "rules").set(snap.rules_version)

    runtime.readiness["jurisdiction"] = jurisdiction_check
    app = create_service_app(
        runtime,
        title="Grid 网格服务 / 辖区登记",
        description="Each county's jurisdiction bundle (division tree with boundaries, units, matters, devolution, "
        "township functions, source mappings, override rules), versioned; export/import round trip; point → grid "
        "locator (WGS-84, GCJ-02, BD-09). Changes are published on `jurisdiction.changed`.",
        routers=[router, devolution_router],
        on_start=on_start,
        before_scrape=before_scrape,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.change_counter = Counter(
        "grid_jurisdiction_changes_total",
        "Bundle imports and rule replacements by outcome 辖区变更次数",
        ["kind", "outcome"],
        registry=runtime.registry,
    )
    return app
