"""What the metrics app's routes and background loops share (one per app instance). 应用实例共享的状态。"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.metrics.scheme_store import sync_scheme_files
from services.metrics.scoring import AssessmentScheme
from services.metrics.settings import MetricsSettings
from services.metrics.signoff import process_revisions
from services.metrics.telemetry import MetricsTelemetry
from services.metrics.units import UnitDirectory
from services.metrics.worktime import recompute_working_durations
from shared.calendar import WorkingCalendar
from shared.db import is_database_unavailable
from shared.logging import get_logger
from shared.service import ServiceRuntime

log = get_logger(__name__)

__all__ = ["MetricsState", "utc_now"]


@dataclass
class MetricsState:
    """What the metrics routes and loops share. 路由与后台任务共享的状态。"""

    settings: MetricsSettings
    runtime: ServiceRuntime
    calendar: WorkingCalendar
    telemetry: MetricsTelemetry
    directory: UnitDirectory
    scheme_files: dict[str, AssessmentScheme]
    revisions_wake: asyncio.Event = field(default_factory=asyncio.Event)
    schemes_synced: bool = False
    scheme_warnings: list[str] = field(default_factory=list)

    async def sync_schemes(self) -> None:
        """Store the preset/configured scheme files (new versions only). 同步方案文件。"""
        async with self.runtime.uow() as uow:
            self.scheme_warnings = await sync_scheme_files(session=uow.session, loaded=self.scheme_files)
        self.schemes_synced = True

    async def _retry_until_synced(self) -> None:
        delay = 1.0
        while not self.schemes_synced:
            await asyncio.sleep(delay)
            with contextlib.suppress(Exception):
                await self.sync_schemes()
            delay = min(delay * 2, 30.0)

    async def _revision_loop(self) -> None:
        """Re-score signed-off periods marked by late changes. 复核已签发周期。"""
        while True:
            try:
                recorded = await process_revisions(sessions=self.runtime.sessions)
                if recorded:
                    self.telemetry.revisions.inc(recorded)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("revision check failed; will retry", error=repr(exc))
            self.revisions_wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.revisions_wake.wait(), self.settings.revision_interval_s)

    async def _refresh_provisional(self) -> None:
        """Once at start: recompute working durations still flagged 暂定 (calendar may know the year now)."""
        while True:
            try:
                async with self.runtime.engine.begin() as conn:
                    changed = await recompute_working_durations(
                        conn=conn, calendar=self.calendar, only_provisional=True
                    )
                if changed:
                    log.info("provisional working durations recomputed", rows=changed)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_database_unavailable(exc):
                    log.warning("provisional recompute failed", error=repr(exc))
                    return
                await asyncio.sleep(5.0)

    async def start(self) -> None:
        try:
            await asyncio.wait_for(self.sync_schemes(), 10)
        except Exception as exc:
            log.warning("scheme files not stored yet (database?); retrying in the background", error=repr(exc))
            self.runtime.spawn(self._retry_until_synced(), "metrics-schemes-sync")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.directory.refresh(), self.settings.grid_timeout_s + 1)
        if self.directory.refused:  # a wrong credential is a configuration error: refuse to start, loudly
            raise RuntimeError(self.directory.refused)
        self.runtime.spawn(self.directory.run(refresh_first=False), "metrics-units")
        self.runtime.spawn(self._revision_loop(), "metrics-revisions")
        self.runtime.spawn(self._refresh_provisional(), "metrics-provisional")


def utc_now() -> datetime:
    """The current time (aware, UTC). 当前时间（UTC）。"""
    return datetime.now(UTC)
