"""What the dispatch app's routes and consumers share (one per app instance). 应用实例共享的上下文。"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.dispatch.grid_client import JurisdictionSource
from services.dispatch.settings import DispatchSettings
from shared.messaging.priority import LivePriority
from shared.service import ServiceRuntime


@dataclass
class DispatchContext:
    """Runtime, settings and the jurisdiction source of one dispatch instance. 派遣实例上下文。"""

    runtime: ServiceRuntime
    settings: DispatchSettings
    source: JurisdictionSource
    #: Live reports before bulk imports (the two incident consumers share it). 实时优先于批量导入。
    live_priority: LivePriority = field(default_factory=LivePriority)

    @property
    def duplicate_window(self) -> timedelta:
        """The merge time window. 并案时间窗。"""
        return timedelta(hours=self.settings.duplicate_window_h)


def utc_now() -> datetime:
    """The current time (aware, UTC). 当前时间（UTC）。"""
    return datetime.now(UTC)
