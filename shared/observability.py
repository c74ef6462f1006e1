"""Prometheus helpers: one explicit ``CollectorRegistry`` per app instance.

Every service exposes ``/metrics`` with HTTP request counts and latency,
plus the outbox, producer and consumer figures of :mod:`shared.messaging.outbox` and
:mod:`shared.messaging`. Labels stay bounded: route templates, never raw paths.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PlatformMetrics:
    """The metrics every service has, registered in the app's own registry."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.registry = registry
        self.service = service
        self.http_requests = Counter(
            "http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry
        )
        self.http_latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.outbox_backlog = Gauge("outbox_backlog", "Outbox rows not yet published to Kafka", registry=registry)
        self.outbox_published = Counter("outbox_published_total", "Outbox rows published", ["topic"], registry=registry)
        self.outbox_errors = Counter("outbox_relay_errors_total", "Relay failures (broker down…)", registry=registry)
        self.outbox_retained = Gauge(
            "outbox_retained", "Published outbox rows kept until every consumer group has them", registry=registry
        )
        self.outbox_republished = Counter(
            "outbox_republished_total", "Retained rows published again because the broker lost them", registry=registry
        )
        self.produce_latency = Histogram(
            "kafka_produce_latency_seconds",
            "Time from send to broker ack, per relay batch",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.broker_up = Gauge("kafka_broker_up", "1 when the last broker operation succeeded", registry=registry)
        self.consumed = Counter("consumer_events_total", "Events consumed", ["topic", "outcome"], registry=registry)
        self.consumer_lag = Gauge(
            "consumer_lag", "Messages behind the partition's high watermark", ["topic", "partition"], registry=registry
        )
        self.dlq = Counter("dlq_messages_total", "Messages sent to a dead-letter topic", ["topic"], registry=registry)


class MetricsMiddleware:
    """Pure ASGI middleware: request count and latency by route template."""

    def __init__(self, app: ASGIApp, metrics: PlatformMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            self.metrics.http_requests.labels(method, template, str(status)).inc()
            self.metrics.http_latency.labels(method, template).observe(time.perf_counter() - start)


def install_metrics(
    app: FastAPI, metrics: PlatformMetrics, before_scrape: Callable[[], Awaitable[None]] | None = None
) -> None:
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        if before_scrape is not None:
            await before_scrape()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
