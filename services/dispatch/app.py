"""Dispatch service (派遣服务): incidents become cases, routed by the jurisdiction; the lifecycle API.

派遣服务：事件立案并按辖区派遣；案件闭环处置接口、超期扫描与事件流。

Run: ``uvicorn --factory services.dispatch.app:create_app --port 8002`` (``make run`` does it).

Start-up: the jurisdiction snapshot is loaded from the grid service (retried in
the background until it answers); ``/readyz`` answers 503 until then, and the
``incident.reported`` consumer starts only once a snapshot is loaded, so no
event is routed without one. Every ``jurisdiction.changed`` reloads it (after the
consumer's commit, on the source's own task).
启动时从网格服务加载辖区快照（后台重试直至成功）；加载前 ``/readyz`` 为 503，
事件消费者在快照加载后才启动；每次辖区变更（提交后）重新加载。
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import httpx
from fastapi import FastAPI

from services.dispatch.api import router
from services.dispatch.api_action_batches import router as action_batches_router
from services.dispatch.api_calendar import router as calendar_router
from services.dispatch.api_whatif import router as whatif_router
from services.dispatch.calendar_notices import load_notices
from services.dispatch.consumers import incident_batch_handler, jurisdiction_handler
from services.dispatch.context import DispatchContext, utc_now
from services.dispatch.dashboard import mount_dashboard
from services.dispatch.forces import wiring as forces
from services.dispatch.grid_client import GridRefusedError, GridUnavailableError, JurisdictionSource
from services.dispatch.models import metadata
from services.dispatch.settings import DispatchSettings
from services.dispatch.sweep import sweep_overdue
from shared.events import INCIDENT_REPORTED, INCIDENT_REPORTED_BULK, JURISDICTION_CHANGED
from shared.logging import get_logger
from shared.messaging.backlog import BULK_BACKLOG_BATCHES, OutboxBacklog
from shared.messaging.consumer import ConsumerRunner
from shared.messaging.priority import LivePriority
from shared.service import Check, ReadinessCheck, ServiceRuntime, create_service_app, tune_gc_for_throughput

log = get_logger(__name__)


def create_app(
    settings: DispatchSettings | None = None, *, grid_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the dispatch app (factory for uvicorn and tests). 构建派遣服务应用。

    ``grid_transport`` lets tests reach an in-process grid app
    (``httpx.ASGITransport(app=grid_app)``). 测试可传入进程内网格服务的 transport。
    """
    settings = settings or DispatchSettings()
    runtime = ServiceRuntime(settings, service="dispatch", metadata=metadata)
    runtime.use_outbox()
    source = JurisdictionSource(
        grid_url=settings.grid_url,
        token=settings.service_bearer(settings.grid_token, setting="DISPATCH_GRID_TOKEN"),
        county_code=settings.county_code,
        transport=grid_transport,
    )
    # A bulk batch waits while the import's cases are not yet relayed to metrics (bounded lag).
    # 批量导入的案件事件尚未中继时暂缓下一批（下游滞后有界）。
    backlog = OutboxBacklog(
        engine=runtime.engine, schema=str(metadata.schema), limit=BULK_BACKLOG_BATCHES * settings.outbox_batch_size
    )
    ctx = DispatchContext(runtime=runtime, settings=settings, source=source, live_priority=LivePriority(backlog))
    incidents = _register_consumers(ctx)
    loaders: list[asyncio.Task[object]] = []

    async def on_start() -> None:
        # One attempt now: a refused credential stops the start, loudly; grid not up yet → retried in
        # the background. 先试一次：令牌被拒则启动失败并说明原因；网格服务未就绪则后台重试。
        with contextlib.suppress(GridUnavailableError, TimeoutError):
            try:
                await asyncio.wait_for(source.reload(), settings.grid_retry_s + 5)
            except GridRefusedError as exc:
                log.error("dispatch cannot start", error=str(exc))
                raise RuntimeError(str(exc)) from None
        loaders.append(asyncio.ensure_future(_start_incidents_when_loaded(ctx, incidents)))
        loaders.append(asyncio.ensure_future(_recompute_deadlines_when_loaded(ctx)))
        runtime.spawn(source.keep_current(settings.grid_retry_s), "dispatch-jurisdiction-reload")
        if settings.overdue_sweep_interval_s > 0:
            runtime.spawn(_sweep_overdue_forever(ctx), "dispatch-overdue-sweep")
        forces.start(ctx)

    async def on_stop() -> None:
        for task in loaders:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    runtime.readiness["jurisdiction"] = _jurisdiction_check(source)
    app = create_service_app(
        runtime,
        title="Dispatch 派遣",
        description="Incidents from `incident.reported` become cases, routed by the county's jurisdiction "
        "(grid service) and explained; staff follow them through the closed loop (签收, 退单, 延期, 办结, 核查, "
        "结案, 回访, 督办, 吹哨). Every transition is published on `case.events`.",
        routers=[router, action_batches_router, whatif_router, calendar_router, *forces.routers()],
        on_start=on_start,
        on_stop=on_stop,
    )
    app.state.dispatch = ctx
    forces.install(app, ctx)
    app.state.settings = settings
    # 调度台: static page at /dashboard plus same-origin proxies to metrics and grid.
    mount_dashboard(app, metrics_url=settings.metrics_url, grid_url=settings.grid_url, grid_transport=grid_transport)
    return app


def _register_consumers(ctx: DispatchContext) -> list[ConsumerRunner]:
    """Register dispatch's consumer groups; return the incident ones of the lanes this process
    dispatches (``incident_lanes``), started once a snapshot is loaded. 登记消费组；返回本进程所消费通道的
    事件消费组（快照加载后启动）。"""
    runtime, settings = ctx.runtime, ctx.settings
    # The incident consumer is registered now (its table is in the metadata) but started
    # only after the first snapshot (/readyz reports it as not started until then).
    # 事件消费者先登记，快照加载后再启动（此前 /readyz 报告其未启动）。
    # A batch is applied with a few set-based statements (handle_incidents). Bulk lane: the
    # partitions of a poll side by side, one transaction each (their transactions take the
    # duplicate-check advisory locks in one sorted statement each and never share an incident, so
    # they cannot deadlock). Live lane: a poll brings a few reports per partition, so all of them
    # go in one transaction (a transaction per partition would be most of the work, and on a busy
    # machine most of a live report's wait). A short fetch wait: on Tansu it is the latency this
    # hop adds (report → case.dispatched).
    # 按批立案。批量通道各分区并行、各自一个事务（咨询锁每批一次按序取得、分区间不共享事件，不会死锁）；
    # 实时通道每次拉取每个分区只有几条，全部分区合为一个事务。拉取等待取短值：在 Tansu 上它就是这一跳增加的时延。
    # The live lane, and the bulk lane (history imports): the same handler, but a bulk batch starts
    # only while no live batch is in hand (shared.messaging.priority). 实时与批量导入通道：同一处理器，实时优先。
    lanes = {  # lane → group, topic, most records in flight, fetch wait (ms)
        "live": (settings.incident_group_id, INCIDENT_REPORTED, settings.incident_max_batch, 20),
        "bulk": (settings.bulk_group_id, INCIDENT_REPORTED_BULK, settings.bulk_max_batch, 100),
    }
    chosen = {"both": ("live", "bulk"), "live": ("live",), "bulk": ("bulk",), "none": ()}[settings.incident_lanes]
    incidents: list[ConsumerRunner] = []
    for lane in chosen:
        group, topic, max_batch, fetch_wait_ms = lanes[lane]
        incidents.append(
            runtime.add_consumer(
                group_id=group,
                topics=[topic],
                batch_handler=incident_batch_handler(ctx, lane=lane),
                max_batch=max_batch,
                concurrent_partitions=lane == "bulk",
                partitions_together=lane == "live",
                fetch_max_wait_ms=fetch_wait_ms,
                start=False,
                starts_when="a jurisdiction snapshot is loaded",
                priority=ctx.live_priority,
                bulk=lane == "bulk",
            )
        )
    runtime.add_consumer(
        group_id=f"{settings.jurisdiction_group_prefix}-{uuid.uuid4().hex[:12]}",
        topics=[JURISDICTION_CHANGED],
        handler=jurisdiction_handler(ctx),
        max_batch=50,
    )
    return incidents


async def _start_incidents_when_loaded(ctx: DispatchContext, incidents: list[ConsumerRunner]) -> None:
    """Wait for the first snapshot, then start the incident consumers. 首个快照加载后启动事件消费者。"""
    runtime, settings, source = ctx.runtime, ctx.settings, ctx.source
    if source.snapshot is None:
        await source.load_until_ready(settings.grid_retry_s)
    # The snapshot, the app and the libraries live as long as the process: keep them out of
    # the cyclic collector's passes, and collect young objects less often — the incident hot
    # path allocates many short-lived objects, almost all freed by reference counting
    # (measured: +10 % and +17 % events/s in bench/dispatch.py). The young threshold sits above
    # what the batches in flight keep alive (about 60 container objects per incident until its
    # batch commits, up to incident_max_batch incidents): a lower one makes every young pass
    # walk the whole in-flight batch (measured: ~10 % of the CPU with batches of 1 000).
    # 长寿对象移出循环垃圾回收，并降低年轻代回收频率（热路径大量分配短命对象，基本由引用计数释放）；
    # 年轻代阈值高于在途批次存活的对象数，否则每次年轻代回收都要遍历整个在途批次。
    tune_gc_for_throughput(young_threshold=200_000)
    for runner in incidents:
        runtime.start_consumer(runner)
    log.info("incident consumers started", groups=[runner.group_id for runner in incidents])


async def _recompute_deadlines_when_loaded(ctx: DispatchContext) -> None:
    """Once the first snapshot (and its calendar) is in: recompute the provisional deadlines a notice
    loaded while dispatch was down has made final. 首个快照加载后：按停机期间载入的放假通知重算暂定期限。"""
    await ctx.source.loaded.wait()
    try:
        await load_notices(ctx, reread=False)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("deadline recompute at start failed", error=repr(exc))


async def _sweep_overdue_forever(ctx: DispatchContext) -> None:
    """Flag overdue cases every ``overdue_sweep_interval_s``, a batch per transaction. 定期超期扫描。"""
    runtime, settings, source = ctx.runtime, ctx.settings, ctx.source
    while True:
        await asyncio.sleep(settings.overdue_sweep_interval_s)
        try:
            while True:
                async with runtime.uow() as uow:
                    flagged = await sweep_overdue(
                        session=uow.session,
                        now=utc_now(),
                        jurisdiction=source.current,
                        correlation_id=f"overdue-sweep-{uuid.uuid4().hex[:8]}",
                        limit=settings.overdue_sweep_batch,
                    )
                if flagged:
                    log.info("cases flagged overdue", count=len(flagged))
                if len(flagged) < settings.overdue_sweep_batch:
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("overdue sweep failed", error=repr(exc))


def _jurisdiction_check(source: JurisdictionSource) -> ReadinessCheck:
    """``/readyz``: required — no incident is routed without a snapshot. 就绪检查：须有辖区快照。"""

    async def jurisdiction_check() -> Check:
        snap = source.snapshot
        if snap is None:
            return Check(False, f"no jurisdiction snapshot yet: {source.last_error or 'loading'}")
        return Check(True, f"{snap.county_code} v{snap.version}/r{snap.rules_version}")

    return jurisdiction_check
