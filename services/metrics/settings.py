"""Metrics settings 绩效考核服务配置 (env prefix ``METRICS_``; platform-wide names also read unprefixed)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
#: Preset assessment schemes 预置考核方案 shipped with the platform.
DEFAULT_SCHEMES_DIR = ROOT / "deploy" / "assessment"


class MetricsSettings(ServiceSettings):
    """Settings of the metrics service. 绩效考核服务配置。"""

    model_config = SettingsConfigDict(env_prefix="METRICS_", extra="ignore")

    #: Grid service 网格服务 (unit names, kinds, townships 单位名称、类型、所属乡镇).
    grid_url: str = "http://127.0.0.1:8003"
    #: Bearer token for ``GET {grid_url}/v1/units``; empty → ``SERVICE_TOKEN``.
    grid_token: str = ""
    grid_timeout_s: float = 5.0
    #: Units are re-fetched this often, and on every ``jurisdiction.changed`` 辖区变更.
    units_refresh_s: float = 300.0
    #: Directory of ``*.yaml`` assessment schemes loaded at start 启动时加载的考核方案目录.
    schemes_dir: str = str(DEFAULT_SCHEMES_DIR)
    #: County code of the working-time calendar 工作日历所属区县 (``deploy/calendar/overrides.yaml``).
    calendar_county: str | None = None
    #: Consumer group of ``case.events`` and ``case.events.bulk``.
    consumer_group: str = "metrics"
    #: Which case-event lanes this process scores: ``both`` (one process), or ``live`` / ``bulk`` to
    #: score a history import's cases (``case.events.bulk``) in a process of its own, started with a
    #: lower CPU priority (``nice``) so the live lane's scoring and the dispatcher's live work come
    #: first. A ``bulk`` process consumes nothing else (joint operations and jurisdiction changes stay
    #: with the live one). 本进程计分的案件事件通道：both，或 live / bulk（历史导入的案件另起低优先级进程计分）。
    case_lanes: Literal["both", "live", "bulk"] = "both"
    #: False: an API-only replica that consumes nothing (benchmarks, read replicas). 只读副本。
    consume: bool = True
    #: How often signed-off periods with late changes are re-scored into a revision 修订检查间隔.
    revision_interval_s: float = 5.0
    #: At most this many distinct townships label the Prometheus gauges (the rest: ``other``).
    max_township_labels: int = 200
