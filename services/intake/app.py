"""Intake service (事件受理): producers POST JSON; accepted records reach Kafka via the outbox.

Run: ``uvicorn --factory services.intake.app:create_app --port 8001`` (``make run`` does it).
"""

from __future__ import annotations

from typing import Any, get_args

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.intake import schemas
from services.intake.api import ProducerKeys, router
from services.intake.models import metadata
from services.intake.settings import DEV_API_KEYS, IntakeSettings
from shared.errors import validation_error_handler
from shared.logging import get_logger
from shared.service import ServiceRuntime, create_service_app, tune_gc_for_throughput
from shared.vocabulary import Source

log = get_logger(__name__)

DEV_PHONE_SALT = "dev-salt-not-for-production"


class BodyGuard:
    """413 for oversized bodies and 415 for non-JSON bodies on ``POST /v1/events/…``,
    checked before anything parses the body (Content-Length and the streamed size)."""

    def __init__(self, app: ASGIApp, *, single_limit: int, batch_limit: int) -> None:
        self.app = app
        self.single_limit = single_limit
        self.batch_limit = batch_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "POST" or not path.startswith("/v1/events/"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers") or []}
        if path.endswith(("/renormalise",)):
            await self.app(scope, receive, send)
            return
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            await _reply(send, 415, f"content type must be application/json, got {ctype or 'none'!r}")
            return
        limit = self.batch_limit if path.endswith("/batch") else self.single_limit
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _reply(send, 413, f"body of {length} bytes exceeds the limit of {limit} bytes")
            return
        # Read the body here, up to the limit, so no parser ever sees an oversized one.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                await _reply(send, 413, f"body exceeds the limit of {limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _reply(send: Send, status: int, detail: str) -> None:
    response = JSONResponse({"detail": detail}, status_code=status)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def _dev_or_refuse(settings: IntakeSettings, field: str, dev_value: str) -> str:
    """The setting, or its dev value when it is blank and dev credentials are asked for; else a clear error.
    配置值；为空时仅在显式开启开发凭据时使用开发值，否则拒绝启动。"""
    value: str = getattr(settings, field)
    if value.strip():
        return value
    name = f"INTAKE_{field.upper()}"
    if not settings.dev_credentials:
        raise ValueError(f"{name} is empty: set it, or ZHPT_DEV_CREDENTIALS=true for the dev value (development only)")
    log.warning(f"ZHPT_DEV_CREDENTIALS: {name} is the dev value; never in production")
    return dev_value


async def _after_start_up() -> None:
    tune_gc_for_throughput()


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    runtime = ServiceRuntime(settings, service="intake", metadata=metadata)
    runtime.use_outbox()
    schemas.set_future_tolerance(settings.future_tolerance_s)
    schemas.set_earliest_reported_at(settings.earliest_reported_at)
    app = create_service_app(
        runtime,
        title="Intake 事件受理",
        description="Producers post 12345 工单, 数字城管 案卷 and 网格员 上报 as JSON (header `X-API-Key`). "
        "Each accepted record is stored verbatim and published, normalised, on `incident.reported`.",
        routers=[router],
        on_start=_after_start_up,
    )
    app.state.settings = settings
    app.state.producer_keys = ProducerKeys(_dev_or_refuse(settings, "api_keys", DEV_API_KEYS))
    app.state.phone_salt = _dev_or_refuse(settings, "phone_hash_salt", DEV_PHONE_SALT)
    app.state.validation_context = lambda: {
        "future_tolerance": schemas.FUTURE_TOLERANCE,
        "earliest": schemas.EARLIEST_REPORTED_AT,
    }
    app.state.intake_counter = Counter(
        "intake_events_total", "Producer records by outcome", ["source", "outcome"], registry=runtime.registry
    )
    app.add_middleware(BodyGuard, single_limit=settings.max_body_bytes, batch_limit=settings.max_batch_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def count_rejections(request: Request, exc: RequestValidationError) -> Any:
        parts = request.url.path.split("/")
        if len(parts) > 3 and parts[1:3] == ["v1", "events"] and parts[3] in get_args(Source):
            app.state.intake_counter.labels(parts[3], "rejected").inc()
        return await validation_error_handler(request, exc)

    return app
