"""What every service has: the runtime (engine, publisher, relay, consumers,
metrics, staff directory) and the FastAPI app around it with ``/healthz``,
``/readyz``, ``/metrics``, request ids and the database-down → 503 rule.

A service's ``app.py`` builds a :class:`ServiceRuntime`, registers its outbox,
consumers and readiness checks, and calls :func:`create_service_app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from sqlalchemy import MetaData, Table
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.answers import Health, Readiness, documented
from shared.auth import StaffDirectory
from shared.db import (
    UnitOfWork,
    create_engine,
    is_database_unavailable,
    lower_backend_priority,
    ping,
    session_factory,
)
from shared.errors import (
    BAD_DATA_DETAIL,
    bad_data_handler,
    document_errors,
    http_error_handler,
    is_bad_data,
    validation_error_handler,
)
from shared.events import LANES
from shared.inputs import NulFreeQueryMiddleware
from shared.logging import bind_correlation, clear_correlation, configure_logging, get_logger
from shared.memory import trim_heap_forever
from shared.messaging.consumer import BatchHandler, ConsumerRunner, Handler
from shared.messaging.outbox import OutboxRelay
from shared.messaging.outbox_tables import outbox_tables
from shared.messaging.priority import LivePriority
from shared.messaging.publisher import KafkaPublisher
from shared.messaging.retention import RetentionKeeper
from shared.messaging.tables import processed_messages_table
from shared.observability import PlatformMetrics, install_metrics
from shared.settings import ServiceSettings
from shared.web import SecurityHeadersMiddleware, clean_request_id, offline_app

log = get_logger(__name__)


@dataclass
class Check:
    """Outcome of one readiness check. ``required`` failures make ``/readyz`` answer 503."""

    ok: bool
    detail: str = ""
    required: bool = True


ReadinessCheck = Callable[[], Awaitable[Check]]


class ServiceRuntime:
    """Engines and clients of one service instance, built in the app's lifespan."""

    def __init__(self, settings: ServiceSettings, *, service: str, metadata: MetaData) -> None:
        self.settings = settings
        self.service = service
        self.metadata = metadata
        self.registry = CollectorRegistry()
        self.metrics = PlatformMetrics(self.registry, service)
        self.staff = StaffDirectory(settings.staff_tokens, dev_credentials=settings.dev_credentials)
        self.engine = create_engine(settings.database_url, pool_size=settings.db_pool_size, application_name=service)
        if settings.db_backend_nice or settings.db_backend_idle:
            lower_backend_priority(self.engine, settings.db_backend_nice, idle=settings.db_backend_idle)
        self.sessions = session_factory(self.engine)
        self.publisher = KafkaPublisher(
            bootstrap=settings.kafka_bootstrap_servers,
            client_id=f"{service}-producer",
            enable_idempotence=settings.kafka_enable_idempotence,
            metrics=self.metrics,
        )
        self.relay: OutboxRelay | None = None
        self.outbox: Table | None = None
        self.processed: Table | None = None
        #: Consumer groups that run with the service (started with it, or started since).
        self.consumers: list[ConsumerRunner] = []
        #: Consumer groups registered with ``start=False``, and what each waits for. 已登记、尚未启动的消费组。
        self.waiting: dict[ConsumerRunner, str] = {}
        self.readiness: dict[str, ReadinessCheck] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._stoppers: list[Callable[[], Awaitable[None]]] = []
        self._broker_checked_at = -1.0
        self._broker_error: str | None = None
        self._started = False
        self._stopping = False

    # -- building blocks
    def use_outbox(self) -> Table:
        """Declare the service's outbox table (in its metadata) and its relay."""
        if self.outbox is None:
            existing = self.metadata.tables.get(f"{self.metadata.schema}.outbox")
            self.outbox = existing if existing is not None else outbox_tables(self.metadata)
            keeper = RetentionKeeper(
                engine=self.engine,
                schema=str(self.metadata.schema),
                bootstrap=self.settings.kafka_bootstrap_servers,
                retention_s=self.settings.outbox_retention_s,
                grace_s=self.settings.outbox_release_grace_s,
            )
            self.relay = OutboxRelay(
                engine=self.engine,
                table=self.outbox,
                publisher=self.publisher,
                metrics=self.metrics,
                batch_size=self.settings.outbox_batch_size,
                poll_interval_s=self.settings.outbox_poll_interval_s,
                linger_s=self.settings.outbox_linger_s,
                keeper=keeper,
                keep_interval_s=self.settings.outbox_keep_interval_s,
                lanes=LANES if self.settings.outbox_lanes == "both" else (self.settings.outbox_lanes,),
            )
        return self.outbox

    def add_consumer(
        self,
        *,
        group_id: str,
        topics: Sequence[str],
        handler: Handler | None = None,
        max_batch: int | None = None,
        batch_handler: BatchHandler | None = None,
        concurrent_partitions: bool = False,
        partitions_together: bool = False,
        fetch_max_wait_ms: int | None = None,
        start: bool = True,
        starts_when: str = "the service starts it",
        priority: LivePriority | None = None,
        bulk: bool = False,
    ) -> ConsumerRunner:
        """Register a consumer group (started with the service). 登记一个消费组（随服务启动）。

        Give ``handler`` (one event at a time) or ``batch_handler`` (every fresh event of a
        partition batch at once, one transaction); ``concurrent_partitions`` applies the
        partitions of a poll side by side, ``partitions_together`` in one transaction;
        ``fetch_max_wait_ms`` overrides the runner's (see
        :class:`~shared.messaging.consumer.ConsumerRunner`). 二选一：``handler`` 逐条处理，
        ``batch_handler`` 整批处理（同一事务）；``concurrent_partitions`` 使各分区并行处理，
        ``partitions_together`` 使其合为一个事务；
        ``fetch_max_wait_ms`` 覆盖拉取等待上限。``priority`` shared by a live and a ``bulk`` runner
        makes the bulk one wait for the live one (:mod:`shared.messaging.priority`). 实时优先。

        ``start=False`` registers it without starting it: it starts when :meth:`start_consumer` is
        called (``starts_when`` says when, for ``/readyz``, which reports it as not started until
        then). ``start=False`` 只登记不启动，待 :meth:`start_consumer` 启动；此前 ``/readyz`` 如实报告未启动。
        """
        if self.processed is None:
            existing = self.metadata.tables.get(f"{self.metadata.schema}.processed_messages")
            self.processed = existing if existing is not None else processed_messages_table(self.metadata)
        runner = ConsumerRunner(
            group_id=group_id,
            topics=topics,
            bootstrap=self.settings.kafka_bootstrap_servers,
            sessions=self.sessions,
            processed=self.processed,
            handler=handler,
            batch_handler=batch_handler,
            publisher=self.publisher,
            metrics=self.metrics,
            max_batch=max_batch or self.settings.consumer_max_batch,
            max_attempts=self.settings.consumer_max_attempts,
            unit_of_work=self.uow,
            concurrent_partitions=concurrent_partitions,
            partitions_together=partitions_together,
            priority=priority,
            bulk=bulk,
        )
        if fetch_max_wait_ms is not None:
            runner.fetch_max_wait_ms = fetch_max_wait_ms
        if start:
            self.consumers.append(runner)
        else:
            self.waiting[runner] = starts_when
        return runner

    def start_consumer(self, runner: ConsumerRunner) -> None:
        """Start a consumer group registered with ``start=False`` (once; a no-op when it already runs
        or the service is stopping). Before the service starts, it is started with the others.
        启动延后启动的消费组（只启动一次；服务停止中则不启动）。"""
        if runner not in self.waiting or self._stopping:
            return
        del self.waiting[runner]
        self.consumers.append(runner)
        if self._started:
            runner.start()

    def uow(self) -> UnitOfWork:
        """A unit of work whose commit wakes the outbox relay (the consumers' transactions are made here too).
        提交后唤醒发件箱中继的工作单元（消费者的事务也由此创建）。"""
        uow = UnitOfWork(self.sessions)
        if self.relay is not None:
            uow.after_commit(self.relay.wake)
        return uow

    def spawn(self, coro: Awaitable[Any], name: str) -> None:
        """Run a background loop for the life of the service."""
        self._tasks.append(asyncio.ensure_future(coro))
        self._tasks[-1].set_name(name)

    def on_stop(self, stopper: Callable[[], Awaitable[None]]) -> None:
        self._stoppers.append(stopper)

    # -- lifecycle
    async def start(self) -> None:
        if self.staff.dev_mode:
            log.warning("ZHPT_DEV_CREDENTIALS: dev staff tokens are active (dev-admin …); never in production")
        if self.relay is not None:
            self.relay.start()
        self._started = True
        for consumer in self.consumers:
            consumer.start()
        if self.settings.memory_trim_interval_s > 0:
            self.spawn(trim_heap_forever(self.settings.memory_trim_interval_s), f"{self.service}-heap-trim")

    async def stop(self) -> None:
        self._stopping = True
        for consumer in self.consumers:  # finish in-flight work and commit first
            try:
                await consumer.stop()
            except Exception as exc:
                log.warning("consumer did not stop cleanly", consumer=consumer.group_id, error=repr(exc))
        for stopper in reversed(self._stoppers):
            with contextlib.suppress(Exception):
                await stopper()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.relay is not None:
            try:
                await self.relay.stop()
            except Exception as exc:
                log.warning("outbox relay did not stop cleanly", error=repr(exc))
        with contextlib.suppress(Exception):
            await self.publisher.stop()
        await self.engine.dispose()

    # -- health
    async def _broker_unreachable(self) -> str | None:
        """``None`` when a bootstrap broker accepts a connection now, else why not (cached 1 s).
        代理是否可连（缓存 1 秒）。"""
        now = time.monotonic()
        if now - self._broker_checked_at < 1.0:
            return self._broker_error
        error: str | None = "no bootstrap server"
        for server in self.settings.kafka_bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host or "127.0.0.1", int(port)), 1.0)
            except (OSError, TimeoutError, ValueError) as exc:
                error = f"broker unreachable at {server.strip()}: {type(exc).__name__}"
                continue
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            error = None
            break
        self._broker_checked_at, self._broker_error = now, error
        return error

    async def _relay_check(self, db_ok: bool, broker_error: str | None) -> Check:
        assert self.relay is not None
        counts = ""
        if db_ok:
            with contextlib.suppress(Exception):
                backlog, retained = await self.relay.backlog(), await self.relay.retained()
                counts = f"; {backlog} waiting to be published, {retained} published and kept until consumed"
        problem = broker_error or self.relay.last_error
        if problem:
            return Check(False, f"{problem}{counts} (kept in PostgreSQL; published when the broker is back)", False)
        return Check(True, f"publishing{counts}", required=False)

    async def readiness_report(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Check] = {}
        db_ok = await ping(self.engine)
        checks["database"] = Check(db_ok, "reachable" if db_ok else "unreachable")
        broker_error = await self._broker_unreachable()
        if self.relay is not None:
            checks["broker"] = await self._relay_check(db_ok, broker_error)
        now = time.monotonic()
        for consumer in self.consumers:
            checks[f"consumer:{consumer.group_id}"] = consumer_check(
                consumer, broker_error, now, self.settings.consumer_stall_after_s
            )
        for consumer, starts_when in self.waiting.items():
            checks[f"consumer:{consumer.group_id}"] = Check(False, f"not started yet: starts once {starts_when}", False)
        for name, check in self.readiness.items():
            try:
                checks[name] = await check()
            except Exception as exc:
                checks[name] = Check(False, repr(exc))
        ready = all(c.ok for c in checks.values() if c.required)
        degraded = any(not c.ok for c in checks.values())
        status = "not_ready" if not ready else ("degraded" if degraded else "ready")
        return ready, {
            "status": status,
            "service": self.service,
            "checks": {k: {"ok": c.ok, "required": c.required, "detail": c.detail} for k, c in checks.items()},
        }


def consumer_check(consumer: ConsumerRunner, broker_error: str | None, now: float, stall_after_s: float) -> Check:
    """How one consumer group is doing: unreachable, not connected, stalled, behind, or consuming.
    消费组状态：代理不可达、未连接、停滞、落后或正常消费。"""
    if broker_error:
        return Check(False, f"{broker_error}; resumes from its committed position when the broker is back", False)
    if not consumer.running:
        return Check(False, "not connected to the broker", required=False)
    behind = sum(consumer.lag.values())
    idle = now - consumer.last_progress
    if behind and idle > stall_after_s:
        return Check(False, f"stalled: {behind} behind, nothing applied for {idle:.0f} s", required=False)
    if behind:
        return Check(True, f"consuming; {behind} behind", required=False)
    return Check(True, "consuming", required=False)


class RequestIdMiddleware:
    """Carries ``X-Request-ID`` (or a new one) through logs and back in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = clean_request_id(headers.get(b"x-request-id", b""))  # bounded: echoed and logged
        scope.setdefault("state", {})["request_id"] = request_id
        bind_correlation(correlation_id=request_id)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            clear_correlation()


def tune_gc_for_throughput(*, young_threshold: int = 20_000) -> None:
    """Keep start-up objects (app, models, libraries, snapshots) out of the cyclic collector's
    passes and collect young objects less often. Hot paths allocate many short-lived objects,
    almost all freed by reference counting; with the default thresholds the collector walks
    every live object again and again (measured: +10–17 % events/s in dispatch, ~10 % less CPU
    per accepted event in intake). Call once, after start-up; ``young_threshold`` should sit above
    what the work in flight keeps alive, or every young pass walks all of it.
    启动后调用：长寿对象移出循环回收，降低年轻代回收频率。"""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, 20, 20)


def health_router(runtime: ServiceRuntime) -> APIRouter:
    router = APIRouter(tags=["health 健康检查"])

    @router.get("/healthz", summary="Process alive 进程存活", **documented(Health))
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.service}

    @router.get(
        "/readyz",
        summary="Ready to serve 就绪: database reachable, broker state reported",
        **documented(Readiness, extra={503: {"model": Readiness, "description": "not ready 未就绪"}}),
    )
    async def readyz() -> JSONResponse:
        ready, report = await runtime.readiness_report()
        return JSONResponse(report, status_code=200 if ready else 503)

    return router


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    on_start: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    before_scrape: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    settings = runtime.settings
    configure_logging(service=runtime.service, level=settings.log_level, json=settings.log_json)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_start is not None:
            await on_start()
        await runtime.start()
        log.info("service started", service=runtime.service)
        try:
            yield
        finally:
            if on_stop is not None:
                await on_stop()
            await runtime.stop()
            log.info("service stopped", service=runtime.service)

    app = offline_app(title=title, description=description, version="1.0.0", lifespan=lifespan)  # /docs: no CDN
    app.state.runtime = runtime
    app.state.staff = runtime.staff
    app.add_middleware(NulFreeQueryMiddleware)  # inside the request id: its 422 carries one too
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(asyncpg.exceptions.DataError, bad_data_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)

    async def scrape() -> None:
        if runtime.relay is not None:
            with contextlib.suppress(Exception):
                await runtime.relay.backlog()
                await runtime.relay.retained()
        if before_scrape is not None:
            await before_scrape()

    install_metrics(app, runtime.metrics, scrape)

    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(asyncpg.PostgresError)
    @app.exception_handler(OSError)
    async def database_errors(request: Request, exc: Exception) -> JSONResponse:
        if is_database_unavailable(exc):
            log.warning("database unavailable", error=repr(exc))
            return JSONResponse(
                {"detail": "database unavailable, retry later 数据库暂不可用，请稍后重试"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        if is_bad_data(exc):
            log.warning("database refused a value", error=type(exc).__name__)
            return JSONResponse({"detail": BAD_DATA_DETAIL}, status_code=422)
        log.exception("database error")
        return JSONResponse({"detail": "internal error"}, status_code=500)

    app.include_router(health_router(runtime))
    for router in routers:
        app.include_router(router)
    _document_errors(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """The OpenAPI document declares the shared error model and real status codes on every operation
    (also routes added after this call). OpenAPI 文档为每个接口声明统一错误模型与状态码。"""
    build = app.openapi
    done: list[dict[str, Any]] = []  # the document already completed (FastAPI rebuilds it when routes change)

    def openapi() -> dict[str, Any]:
        document = build()
        if not done or done[0] is not document:
            done[:] = [document_errors(document)]
        return document

    app.openapi = openapi  # type: ignore[method-assign]
