"""Metrics service 绩效考核服务: 办结 time on working and natural clocks, indicators, schemes, rankings.

Consumes ``case.events`` into one fact per case and ``operation.events`` into joint-operation lapses,
serves indicators, assessment schemes, township ratings, scores and rankings, sign-off with revisions,
CSV/XLSX exports, the 监督问责 report, and the live picture on ``/metrics``.

Run: ``uvicorn --factory services.metrics.app:create_app --port 8004``.
"""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.metrics.api import router
from services.metrics.api_accountability import router as accountability_router
from services.metrics.api_dispatchers import router as dispatchers_router
from services.metrics.api_schemes import router as schemes_router
from services.metrics.api_sources import router as sources_router
from services.metrics.consumers import CaseEventConsumer, jurisdiction_handler
from services.metrics.context import MetricsState
from services.metrics.models import metadata
from services.metrics.operation_consumer import operation_handler
from services.metrics.scoring import load_schemes
from services.metrics.settings import MetricsSettings
from services.metrics.telemetry import MetricsTelemetry
from services.metrics.units import UnitDirectory
from shared.calendar import load_calendar
from shared.events import CASE_EVENTS, CASE_EVENTS_BULK, JURISDICTION_CHANGED, OPERATION_EVENTS
from shared.logging import get_logger
from shared.service import Check, ServiceRuntime, create_service_app

log = get_logger(__name__)

__all__ = ["create_app"]


def create_app(
    settings: MetricsSettings | None = None, *, grid_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """The metrics app. ``grid_transport``: an httpx transport for the grid client (tests)."""
    settings = settings or MetricsSettings()
    runtime = ServiceRuntime(settings, service="metrics", metadata=metadata)
    calendar = load_calendar(county=settings.calendar_county)
    scheme_files = load_schemes(settings.schemes_dir)  # a broken scheme file stops the start, naming the field
    telemetry = MetricsTelemetry(runtime.registry, max_townships=settings.max_township_labels)
    directory = UnitDirectory(
        sessions=runtime.sessions,
        grid_url=settings.grid_url,
        token=settings.service_bearer(settings.grid_token, setting="METRICS_GRID_TOKEN"),
        timeout_s=settings.grid_timeout_s,
        refresh_s=settings.units_refresh_s,
        transport=grid_transport,
    )
    state = MetricsState(
        settings=settings,
        runtime=runtime,
        calendar=calendar,
        telemetry=telemetry,
        directory=directory,
        scheme_files=scheme_files,
    )
    if settings.consume:
        # A case's events all travel in its lane's topic; one group for both lanes (the group the
        # outbox waits for), each process subscribed to the lanes it scores. 一个消费组，各进程订阅所计分的通道。
        # A poll's partitions in one transaction: a case's events all sit in one partition and the fold
        # is per case, so nothing depends on partitions apart; the live lane brings a few events per
        # partition per poll, and a transaction each cost most of the work. 同一次拉取的各分区合为一个事务。
        lanes = {"both": [CASE_EVENTS, CASE_EVENTS_BULK], "live": [CASE_EVENTS], "bulk": [CASE_EVENTS_BULK]}
        runtime.add_consumer(
            group_id=settings.consumer_group,
            topics=lanes[settings.case_lanes],
            batch_handler=CaseEventConsumer(
                calendar=calendar, telemetry=telemetry, revisions_wake=state.revisions_wake
            ),
            partitions_together=True,
        )
    if settings.consume and settings.case_lanes != "bulk":
        runtime.add_consumer(
            group_id=f"{settings.consumer_group}-jurisdiction",
            topics=[JURISDICTION_CHANGED],
            handler=jurisdiction_handler(directory),
        )
        runtime.add_consumer(  # 联合执法 → 监督问责 (the group named in shared/events.py keeps the outbox rows)
            group_id=f"{settings.consumer_group}-operations", topics=[OPERATION_EVENTS], handler=operation_handler
        )

    async def grid_check() -> Check:
        if directory.last_error is None and directory.last_count is not None:
            return Check(True, f"{directory.last_count} units from grid", required=False)
        return Check(False, directory.last_error or "not fetched yet; using stored units", required=False)

    async def schemes_check() -> Check:
        detail = "stored" if state.schemes_synced else "scheme files not stored yet"
        if state.scheme_warnings:
            detail += "; " + " | ".join(state.scheme_warnings)
        return Check(state.schemes_synced, detail, required=False)

    runtime.readiness["grid"] = grid_check
    runtime.readiness["schemes"] = schemes_check

    async def before_scrape() -> None:
        try:
            await telemetry.refresh_gauges(runtime.sessions)
        except Exception as exc:  # /metrics must answer even when the database does not
            log.warning("case gauges not refreshed", error=repr(exc))

    app = create_service_app(
        runtime,
        title="Metrics 绩效考核",
        description="办结 time on working and natural clocks 工作时/自然时办结时长, indicators 指标, "
        "assessment schemes 考核方案, township ratings 乡镇评价, rankings 排名, sign-off 签发 with revisions 修订, "
        "CSV/XLSX exports. Staff bearer token on every route; a township sees its own rows, admin sees all.",
        routers=[router, schemes_router, accountability_router, dispatchers_router, sources_router],
        on_start=state.start,
        before_scrape=before_scrape,
    )
    app.state.metrics = state
    app.state.settings = settings
    return app
