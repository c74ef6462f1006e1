"""Intake's HTTP routes (thin): authenticate the producer, validate, normalise, accept."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import Counter
from pydantic import BaseModel, Field, ValidationError

from services.intake.alarm_updates import resolve_clearings
from services.intake.answers import RawRecord, Renormalised
from services.intake.normalise import content_hash, normalise
from services.intake.schemas import EXAMPLES, SOURCE_MODELS, BatchBody, SourceRecord
from services.intake.service import Submission, accept_submissions, get_accepted, received_now
from services.intake.settings import IntakeSettings
from shared.answers import documented
from shared.auth import Admin
from shared.cooperative import SLICE, cooperative_map
from shared.db import driver_connection
from shared.events import INCIDENT_REPORTED, INCIDENT_REPORTED_BULK
from shared.service import ServiceRuntime
from shared.vocabulary import Source


class _OrjsonRequest(Request):
    """Parses the JSON body with orjson (3–5× faster than the standard library on producer batches);
    its decode error is a ``json.JSONDecodeError``, so a malformed body still answers 422."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class _OrjsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def orjson_handler(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive, request._send))

        return orjson_handler


router = APIRouter(route_class=_OrjsonRoute)


class ProducerKeys:
    """``X-API-Key`` → source. Built once from ``INTAKE_API_KEYS`` (JSON: source → [keys])."""

    def __init__(self, raw_json: str) -> None:
        shape = 'INTAKE_API_KEYS must be a JSON object {"<source>": ["<key>", ...]}'
        try:
            data = orjson.loads(raw_json)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"INTAKE_API_KEYS is not valid JSON ({exc}); {shape}") from None
        if not isinstance(data, dict) or not data:
            raise ValueError(shape)
        self.source_of: dict[str, str] = {}
        for source, keys in data.items():
            if source not in SOURCE_MODELS:
                raise ValueError(f"INTAKE_API_KEYS: unknown source {source!r}")
            if not isinstance(keys, list) or not all(isinstance(k, str) and k.strip() == k and k for k in keys):
                raise ValueError(f"INTAKE_API_KEYS[{source!r}]: a list of non-blank keys expected")
            for key in keys:
                self.source_of[key] = source


@dataclass(frozen=True, slots=True)
class IntakeContext:
    """What the intake routes share 路由共享的状态: runtime, settings, producer keys, the phone-hash salt,
    the validation context and the per-source outcome counter."""

    runtime: ServiceRuntime
    settings: IntakeSettings
    keys: ProducerKeys
    phone_salt: str
    validation_context: Callable[[], dict[str, Any]]
    counter: Counter

    def count(self, source: str, outcome: str, n: int = 1) -> None:
        """Count ``n`` producer records of ``source`` by outcome. 按来源与结果计数。"""
        if n:
            self.counter.labels(source, outcome).inc(n)


async def intake_context(request: Request) -> IntakeContext:
    """The app's :class:`IntakeContext` (dependency). 应用状态。"""
    state = request.app.state
    return IntakeContext(
        runtime=state.runtime,
        settings=state.settings,
        keys=state.producer_keys,
        phone_salt=state.phone_salt,
        validation_context=state.validation_context,
        counter=state.intake_counter,
    )


#: Route parameter type for the intake app's shared state: ``intake: Intake``.
Intake = Annotated[IntakeContext, Depends(intake_context)]


def producer(source: Source) -> Any:
    """Dependency: the ``X-API-Key`` of ``source``'s producer; its printable name. 生产方密钥校验。"""

    async def check(intake: Intake, x_api_key: Annotated[str | None, Header()] = None) -> str:
        keys = intake.keys
        if not x_api_key or x_api_key not in keys.source_of:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or unknown X-API-Key")
        if keys.source_of[x_api_key] != source:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this X-API-Key belongs to source {keys.source_of[x_api_key]!r}, not {source!r}",
            )
        return x_api_key[:4] + "…" if not x_api_key.startswith("dev-") else x_api_key

    return Depends(check)


#: The lane a batch goes in 通道: ``live`` (today's reports) or ``bulk`` (a history import 历史导入,
#: dispatched only while no live report is in hand, so live work never waits behind an import).
Lane = Literal["live", "bulk"]
LANE_TOPICS: dict[str, str] = {"live": INCIDENT_REPORTED, "bulk": INCIDENT_REPORTED_BULK}
LaneParam = Annotated[
    Lane,
    Query(
        description="live 实时 (default) | bulk 批量导入: a history import goes in its own lane, dispatched "
        "only while no live report is in hand, so a dispatcher's live work never waits behind it"
    ),
]


class AcceptedResponse(BaseModel):
    event_id: uuid.UUID
    status: str = Field(
        description="accepted 已受理 | duplicate 重复 (points to the first event) | updated 已更新 "
        "(告警恢复: an alarm's cleared_at added)"
    )
    duplicate_of: uuid.UUID | None = None


class BatchItemResult(BaseModel):
    index: int
    status: str = Field(description="accepted | duplicate | updated (alarms: cleared_at added) | conflict | rejected")
    event_id: uuid.UUID | None = None
    errors: list[dict[str, Any]] | None = None


class BatchResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    updated: int = Field(0, description="告警恢复: alarms posted again with cleared_at added")
    results: list[BatchItemResult]


async def _accept(
    request: Request,
    intake: IntakeContext,
    source: str,
    items: list[tuple[dict[str, Any], SourceRecord]],
    key_name: str,
    *,
    lane: Lane = "live",
) -> list[Any]:
    runtime = intake.runtime
    now = received_now()
    salt = intake.phone_salt

    def submission(item: tuple[dict[str, Any], SourceRecord]) -> Submission:
        raw, record = item
        return Submission(
            source=source,
            raw=raw,
            content_hash=content_hash(raw),
            event=normalise(source, record, received_at=now, phone_salt=salt),
        )

    submissions = await cooperative_map(submission, items)
    correlation_id = request.scope.get("state", {}).get("request_id") or str(uuid.uuid4())
    async with driver_connection(runtime.engine) as conn:
        outcomes = await accept_submissions(
            conn=conn,
            submissions=submissions,
            correlation_id=correlation_id,
            api_key_name=key_name,
            topic=LANE_TOPICS[lane],
        )
        if source == "alarm":
            outcomes = await resolve_clearings(
                conn=conn, submissions=submissions, outcomes=outcomes, correlation_id=correlation_id
            )
    if runtime.relay is not None and any(o.status in ("accepted", "updated") for o in outcomes):
        runtime.relay.wake()
    return outcomes


async def _accept_one(
    request: Request, intake: IntakeContext, source: str, record: SourceRecord, key_name: str
) -> JSONResponse:
    raw = await request.json()
    [outcome] = await _accept(request, intake, source, [(raw, record)], key_name)
    intake.count(source, outcome.status)
    if outcome.status == "accepted":
        return JSONResponse({"event_id": str(outcome.event_id), "status": "accepted"}, status_code=202)
    if outcome.status == "duplicate":
        return JSONResponse(
            {"event_id": str(outcome.event_id), "status": "duplicate", "duplicate_of": str(outcome.event_id)},
            status_code=200,
        )
    if outcome.status == "updated":
        return JSONResponse({"event_id": str(outcome.event_id), "status": "updated"}, status_code=200)
    return JSONResponse(
        {
            "detail": f"different content under the same source id; the first event is {outcome.event_id} "
            "(amend a ticket with an amendment, not a re-post)",
            "event_id": str(outcome.event_id),
            "status": "conflict",
        },
        status_code=409,
    )


_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": AcceptedResponse, "description": "accepted 已受理 (committed; published to Kafka by the outbox)"},
    200: {
        "model": AcceptedResponse,
        "description": "duplicate 重复: the same record was accepted before; updated 已更新: an alarm posted "
        "again with cleared_at (and possibly level) added (告警恢复)",
    },
    401: {"description": "missing or unknown X-API-Key"},
    403: {"description": "the key belongs to another source"},
    409: {"description": "different content under an already used source id"},
    413: {"description": "body too large"},
    415: {"description": "content type is not application/json"},
    503: {"description": "database unavailable (Retry-After)"},
}


def _example(source: Source) -> Any:
    return Body(openapi_examples={"example": {"summary": f"a complete {source} record", "value": EXAMPLES[source]}})


#: The producer systems 生产方: source, what it sends, its single-record route's name and summary.
_PRODUCERS: tuple[tuple[Source, str, str, str], ...] = (
    ("12345", "12345热线工单", "post_hotline", "Post a 12345 hotline ticket 12345热线工单"),
    ("cityops", "数字城管案卷", "post_cityops", "Post a 数字城管 case 数字城管案卷"),
    ("gridworker", "网格员上报", "post_gridworker", "Post a grid worker's report 网格员上报"),
    ("approval", "审批办件", "post_approval", "Post an approval decision 审批办件 (双推送)"),
    ("alarm", "监测告警", "post_alarm", "Post a monitoring alarm 监测告警 (re-post with cleared_at = 告警恢复)"),
)


def _single_route(source: Source) -> Callable[..., Coroutine[Any, Any, JSONResponse]]:
    """``POST /v1/events/{source}``: one record of ``source``'s model. 单条上报。"""

    async def post_one(request: Request, intake: Intake, record: SourceRecord, key_name: str) -> JSONResponse:
        return await _accept_one(request, intake, source, record, key_name)

    # The record's model and the producer check depend on the source: set as real objects, which
    # FastAPI reads from the signature (the module's annotations are strings).
    post_one.__annotations__ = {
        "request": Request,
        "intake": Intake,
        "record": Annotated[SOURCE_MODELS[source], _example(source)],
        "key_name": Annotated[str, producer(source)],
        "return": JSONResponse,
    }
    return post_one


for _source, _, _name, _summary in _PRODUCERS:
    router.add_api_route(
        f"/v1/events/{_source}",
        _single_route(_source),
        methods=["POST"],
        name=_name,
        status_code=202,
        responses=_RESPONSES,
        tags=["intake 事件受理"],
        summary=_summary,
    )


def _batch_route(source: Source) -> Any:
    model = SOURCE_MODELS[source]

    async def post_batch(
        request: Request, intake: Intake, body: BatchBody, key_name: str = producer(source), lane: LaneParam = "live"
    ) -> Response:
        limit = intake.settings.max_batch_items
        if len(body.events) > limit:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"a batch holds at most {limit} events, got {len(body.events)}"
            )
        context = intake.validation_context()
        results: list[dict[str, Any] | None] = [None] * len(body.events)
        valid: list[tuple[int, dict[str, Any], SourceRecord]] = []
        for i, raw in enumerate(body.events):
            if i and i % SLICE == 0:
                await asyncio.sleep(0)  # let the relay and other requests run (shared.cooperative)
            try:
                valid.append((i, raw, model.model_validate(raw, context=context)))
            except ValidationError as exc:
                errors = [
                    {"loc": ["events", i, *e["loc"]], "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors(include_url=False)
                ]
                results[i] = {"index": i, "status": "rejected", "event_id": None, "errors": errors}
        outcomes = (
            await _accept(request, intake, source, [(raw, rec) for _, raw, rec in valid], key_name, lane=lane)
            if valid
            else []
        )
        for (i, _, _), outcome in zip(valid, outcomes, strict=True):
            results[i] = {"index": i, "status": outcome.status, "event_id": outcome.event_id, "errors": None}
        final = [r for r in results if r is not None]
        tally = dict.fromkeys(("accepted", "duplicate", "updated", "conflict", "rejected"), 0)
        for r in final:
            tally[r["status"]] += 1
        for s, n in tally.items():
            intake.count(source, s, n)
        # Serialised here (the shape is BatchResponse, documented by response_model): re-validating
        # 500 items through the response model would cost more than accepting them.
        return Response(
            orjson.dumps(
                {
                    "accepted": tally["accepted"],
                    "duplicates": tally["duplicate"],
                    "rejected": tally["rejected"] + tally["conflict"],
                    "updated": tally["updated"],
                    "results": final,
                }
            ),
            media_type="application/json",
        )

    return post_batch


for _source, _label, _, _ in _PRODUCERS:
    router.add_api_route(
        f"/v1/events/{_source}/batch",
        _batch_route(_source),
        methods=["POST"],
        response_model=BatchResponse,
        tags=["intake 事件受理"],
        summary=f"Post a batch of {_source} records 批量{_label}",
        description="Up to 500 records (configurable). Answers per item, in order: accepted, duplicate, "
        "updated (alarms: cleared_at added), conflict or rejected with the reason. One bad item never rejects "
        "the others. A history import posts with `?lane=bulk` 批量导入通道: the same handling, after live reports.",
        openapi_extra={"requestBody": {"content": {"application/json": {"example": {"events": [EXAMPLES[_source]]}}}}},
    )


@router.get(
    "/v1/events/{event_id}/raw",
    **documented(RawRecord),
    tags=["intake 事件受理"],
    summary="What the producer sent, verbatim 原始报文 (admin only; contains personal data)",
)
async def get_raw(intake: Intake, event_id: uuid.UUID, _: Admin) -> dict[str, Any]:
    async with intake.runtime.uow() as uow:
        row = await get_accepted(session=uow.session, event_id=event_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such event")
    return {
        "event_id": str(row["event_id"]),
        "source": row["source"],
        "source_id": row["source_id"],
        "received_at": row["received_at"].isoformat(),
        "content_hash": row["content_hash"],
        "raw": row["raw"],
        "normalised": row["normalised"],
    }


@router.post(
    "/v1/events/{event_id}/renormalise",
    **documented(Renormalised),
    tags=["intake 事件受理"],
    summary="Normalise the stored raw record again 重新标准化 (admin; dry run, publishes nothing)",
)
async def renormalise(intake: Intake, event_id: uuid.UUID, _: Admin) -> dict[str, Any]:
    async with intake.runtime.uow() as uow:
        row = await get_accepted(session=uow.session, event_id=event_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such event")
    model = SOURCE_MODELS[row["source"]]
    record = model.model_validate(row["raw"], context={"now": row["received_at"]})
    event = normalise(
        row["source"],
        record,
        received_at=row["received_at"],
        phone_salt=intake.phone_salt,
    )
    return {
        "event_id": str(event_id),
        "normalised": event.model_dump(mode="json"),
        "stored": row["normalised"],
        "same_as_stored": event.model_dump(mode="json") == row["normalised"],
    }
