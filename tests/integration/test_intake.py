"""Intake end to end: real HTTP through the ASGI app, real PostgreSQL, real Tansu."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from services.intake.app import create_app
from services.intake.schemas import EXAMPLES
from services.intake.settings import IntakeSettings
from shared.db import create_engine
from shared.embedded import TansuBroker, free_port
from shared.events import INCIDENT_REPORTED, decode_envelope, incident_event_id
from shared.geo import haversine_m
from tests.conftest import read_topic
from tests.helpers import eventually, serve

KEYS = {"12345": "k-hotline", "cityops": "k-cityops", "gridworker": "k-grid"}
API_KEYS = orjson.dumps({s: [k] for s, k in KEYS.items()}).decode()
STAFF = orjson.dumps(
    {"t-admin": {"role": "admin", "township": "*"}, "t-disp": {"role": "dispatcher", "township": "*"}}
).decode()


def settings_for(database_url: str, bootstrap: str, **kw: Any) -> IntakeSettings:
    return IntakeSettings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        api_keys=API_KEYS,
        staff_tokens=STAFF,
        phone_hash_salt="test-salt",
        outbox_poll_interval_s=0.1,
        log_json=False,
        **kw,
    )


@pytest.fixture(scope="module")
async def client(database_url: str, kafka: TansuBroker) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings_for(database_url, kafka.bootstrap))) as c:
        yield c


def record(source: str, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLES[source])
    id_field = {"12345": "ticket_no", "cityops": "case_no", "gridworker": "report_id"}[source]
    body[id_field] = f"{source}-{uuid.uuid4().hex[:10]}"
    body.update(changes)
    return body


def sid(source: str, body: dict[str, Any]) -> str:
    return body[{"12345": "ticket_no", "cityops": "case_no", "gridworker": "report_id"}[source]]


async def post(client: httpx.AsyncClient, source: str, body: Any, key: str | None = None, **kw: Any) -> httpx.Response:
    headers = {"X-API-Key": key or KEYS[source], **kw.pop("headers", {})}
    return await client.post(f"/v1/events/{source}", json=body, headers=headers, **kw)


async def events_for(bootstrap: str, ids: set[uuid.UUID], timeout_s: float = 20.0) -> dict[uuid.UUID, Any]:
    found: dict[uuid.UUID, Any] = {}

    async def check() -> bool:
        for rec in await read_topic(bootstrap, INCIDENT_REPORTED, expect=10**9, timeout_s=1.0):
            env = decode_envelope(rec.value)
            if env.id in ids:
                found[env.id] = (env, rec)
        return ids <= set(found)

    await eventually(check, timeout_s=timeout_s, every_s=0.2)
    return found


# --------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("source", ["12345", "cityops", "gridworker"])
async def test_each_source_is_normalised_onto_kafka(client: httpx.AsyncClient, kafka: TansuBroker, source: str) -> None:
    body = record(source)
    response = await post(client, source, body)
    assert response.status_code == 202, response.text
    event_id = uuid.UUID(response.json()["event_id"])
    assert event_id == incident_event_id(source, sid(source, body))

    [(envelope, rec)] = (await events_for(kafka.bootstrap, {event_id})).values()
    data = envelope.data
    assert envelope.type == "incident.reported" and data.source == source
    assert rec.key == str(event_id).encode()
    assert dict(rec.headers)["ce_type"] == b"incident.reported"
    assert data.reported_at.utcoffset() is not None
    assert data.location is not None
    original = body["location"]
    if original["crs"] in ("gcj02", "bd09"):  # converted: a few hundred metres from the raw numbers
        assert 200 < haversine_m(data.location.lng, data.location.lat, original["lng"], original["lat"]) < 1500
    else:
        assert (data.location.lng, data.location.lat) == (original["lng"], original["lat"])
    if source == "12345":
        assert data.caller is not None and data.caller.phone_masked == "138****5678"
        assert data.caller.phone_hash and "13812345678" not in rec.value.decode()
        assert data.category_key == body["category_code"] and data.appeal_type == "complaint"
    if source == "cityops":
        assert data.category_key == "01-002" and data.category_name == "市容环境"
    if source == "gridworker":
        assert data.grid_code == body["grid_code"] and data.reporter_kind == "grid_worker"


async def test_naive_time_is_read_as_shanghai(client: httpx.AsyncClient) -> None:
    body = record("cityops", reported_at="2026-11-24T08:00:00")
    response = await post(client, "cityops", body)
    assert response.status_code == 202
    raw = await client.get(f"/v1/events/{response.json()['event_id']}/raw", headers={"Authorization": "Bearer t-admin"})
    assert raw.json()["normalised"]["reported_at"] == "2026-11-24T08:00:00+08:00"


# --------------------------------------------------------------------------- idempotency


async def test_repost_is_a_duplicate_and_publishes_nothing_new(client: httpx.AsyncClient, kafka: TansuBroker) -> None:
    body = record("12345")
    first = await post(client, "12345", body)
    assert first.status_code == 202
    event_id = uuid.UUID(first.json()["event_id"])
    await events_for(kafka.bootstrap, {event_id})
    again = await post(client, "12345", copy.deepcopy(body))
    assert again.status_code == 200
    assert again.json() == {"event_id": str(event_id), "status": "duplicate", "duplicate_of": str(event_id)}
    records = await read_topic(kafka.bootstrap, INCIDENT_REPORTED, expect=10**9, timeout_s=1.5)
    assert sum(1 for r in records if decode_envelope(r.value).id == event_id) == 1


async def test_changed_payload_under_same_id_is_409_naming_the_first(client: httpx.AsyncClient) -> None:
    body = record("gridworker")
    first = await post(client, "gridworker", body)
    changed = dict(body, description="完全不同的描述")
    conflict = await post(client, "gridworker", changed)
    assert conflict.status_code == 409
    assert first.json()["event_id"] in conflict.json()["detail"]
    assert conflict.json()["event_id"] == first.json()["event_id"]


# --------------------------------------------------------------------------- rejections


async def test_missing_and_bad_fields_are_all_named(client: httpx.AsyncClient) -> None:
    body = record("12345")
    del body["content"]
    body["channel"] = "pigeon"
    body["urgency"] = "whenever"
    response = await post(client, "12345", body)
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert {("body", "content"), ("body", "channel"), ("body", "urgency")} <= locs


async def test_coordinates_outside_china_are_rejected(client: httpx.AsyncClient) -> None:
    body = record("cityops", location={"lng": 2.35, "lat": 48.85, "crs": "wgs84"})
    response = await post(client, "cityops", body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "location"] and "China" in error["msg"]


async def test_time_in_the_future_is_rejected(client: httpx.AsyncClient) -> None:
    future = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    response = await post(client, "gridworker", record("gridworker", reported_at=future))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "reported_at"]
    near = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()  # within clock-skew tolerance
    assert (await post(client, "gridworker", record("gridworker", reported_at=near))).status_code == 202


async def test_unknown_enum_value_is_rejected(client: httpx.AsyncClient) -> None:
    response = await post(client, "cityops", record("cityops", kind="building"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "kind"]


async def test_cityops_accepts_old_and_2026_minor_codes(client: httpx.AsyncClient) -> None:
    assert (await post(client, "cityops", record("cityops", minor_code="01"))).status_code == 202
    assert (await post(client, "cityops", record("cityops", minor_code="001"))).status_code == 202
    bad = await post(client, "cityops", record("cityops", minor_code="0001"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "minor_code"]


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    body = record("12345", content="长" * 400_000)  # ~1.2 MB of UTF-8
    response = await post(client, "12345", body)
    assert response.status_code == 413


async def test_chunked_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    payload = orjson.dumps(record("12345", content="x" * (1024 * 1024 + 10)))

    async def chunks() -> Any:
        for i in range(0, len(payload), 65536):
            yield payload[i : i + 65536]

    response = await client.post(
        "/v1/events/12345", content=chunks(), headers={"X-API-Key": KEYS["12345"], "Content-Type": "application/json"}
    )
    assert response.status_code == 413


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/events/12345",
        content=orjson.dumps(record("12345")),
        headers={"X-API-Key": KEYS["12345"], "Content-Type": "text/plain"},
    )
    assert response.status_code == 415


async def test_missing_wrong_and_foreign_keys(client: httpx.AsyncClient) -> None:
    body = record("12345")
    assert (await client.post("/v1/events/12345", json=body)).status_code == 401
    assert (await post(client, "12345", body, key="nope")).status_code == 401
    foreign = await post(client, "12345", body, key=KEYS["cityops"])
    assert foreign.status_code == 403 and "cityops" in foreign.json()["detail"]


# --------------------------------------------------------------------------- batches


async def test_batch_answers_per_item(client: httpx.AsyncClient, kafka: TansuBroker) -> None:
    good = [record("cityops") for _ in range(3)]
    bad = record("cityops")
    del bad["description"]
    dup = copy.deepcopy(good[0])
    events = [good[0], bad, good[1], dup, good[2]]
    response = await client.post(
        "/v1/events/cityops/batch", json={"events": events}, headers={"X-API-Key": KEYS["cityops"]}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert [r["status"] for r in result["results"]] == ["accepted", "rejected", "accepted", "duplicate", "accepted"]
    assert result["results"][1]["errors"][0]["loc"] == ["events", 1, "description"]
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (3, 1, 1)
    ids = {uuid.UUID(r["event_id"]) for r in result["results"] if r["status"] == "accepted"}
    await events_for(kafka.bootstrap, ids)


async def test_batch_first_occurrence_wins_and_later_ones_are_judged_against_it(
    client: httpx.AsyncClient, kafka: TansuBroker
) -> None:
    earlier = record("cityops")
    assert (await post(client, "cityops", earlier)).status_code == 202
    first = record("cityops", description="第一次上报：井盖缺失")
    changed = copy.deepcopy(first)
    changed["description"] = "同一案卷号，内容不同"
    earlier_changed = copy.deepcopy(earlier)
    earlier_changed["description"] = "改过的内容"
    events = [first, changed, copy.deepcopy(first), copy.deepcopy(earlier), earlier_changed]
    response = await client.post(
        "/v1/events/cityops/batch", json={"events": events}, headers={"X-API-Key": KEYS["cityops"]}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert [r["status"] for r in result["results"]] == ["accepted", "conflict", "duplicate", "duplicate", "conflict"]
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (1, 2, 2)
    first_id = uuid.UUID(result["results"][0]["event_id"])
    assert {r["event_id"] for r in result["results"][:3]} == {str(first_id)}
    # Exactly one event on Kafka for the batch's new record, carrying the first occurrence's content.
    found = await events_for(kafka.bootstrap, {first_id})
    assert found[first_id][0].data.description == "第一次上报：井盖缺失"
    records = await read_topic(kafka.bootstrap, INCIDENT_REPORTED, expect=10**9, timeout_s=1.0)
    assert sum(1 for rec in records if decode_envelope(rec.value).id == first_id) == 1


@pytest.mark.parametrize("path", ["/v1/events/12345", "/v1/events/12345/batch"])
async def test_malformed_json_is_422_naming_the_position(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(
        path,
        content=b'{"ticket_no": "T1", "title": ',
        headers={"X-API-Key": KEYS["12345"], "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["type"] == "json_invalid" and error["loc"][0] == "body" and isinstance(error["loc"][1], int)


async def test_batch_over_limit_is_413(client: httpx.AsyncClient) -> None:
    events = [record("gridworker") for _ in range(501)]
    response = await client.post(
        "/v1/events/gridworker/batch", json={"events": events}, headers={"X-API-Key": KEYS["gridworker"]}
    )
    assert response.status_code == 413


# --------------------------------------------------------------------------- raw record


async def test_raw_record_is_admin_only_and_renormalisable(client: httpx.AsyncClient) -> None:
    body = record("12345", extra_field_from_producer={"kept": True})
    event_id = (await post(client, "12345", body)).json()["event_id"]
    url = f"/v1/events/{event_id}/raw"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers={"Authorization": "Bearer t-disp"})).status_code == 403
    raw = await client.get(url, headers={"Authorization": "Bearer t-admin"})
    assert raw.status_code == 200
    assert raw.json()["raw"]["caller"]["phone"] == "13812345678"
    assert raw.json()["raw"]["extra_field_from_producer"] == {"kept": True}
    again = await client.post(f"/v1/events/{event_id}/renormalise", headers={"Authorization": "Bearer t-admin"})
    assert again.status_code == 200 and again.json()["same_as_stored"] is True


async def test_openapi_has_an_example_per_source(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for source in ("12345", "cityops", "gridworker"):
        content = spec["paths"][f"/v1/events/{source}"]["post"]["requestBody"]["content"]["application/json"]
        assert content["examples"]["example"]["value"] == EXAMPLES[source]
    assert (await client.get("/docs")).status_code == 200


async def test_metrics_count_outcomes_per_source(client: httpx.AsyncClient) -> None:
    await post(client, "cityops", record("cityops"))
    await post(client, "cityops", record("cityops", kind="building"))
    text_ = (await client.get("/metrics")).text
    assert 'intake_events_total{outcome="accepted",source="cityops"}' in text_
    assert 'intake_events_total{outcome="rejected",source="cityops"}' in text_
    assert "http_request_duration_seconds_bucket" in text_ and "outbox_backlog" in text_


# --------------------------------------------------------------------------- failures


async def test_broker_down_keeps_accepting_and_relay_catches_up(own_database_url: str, own_broker: TansuBroker) -> None:
    async with serve(create_app(settings_for(own_database_url, own_broker.bootstrap))) as client:
        warm = await post(client, "gridworker", record("gridworker"))
        assert warm.status_code == 202
        await events_for(own_broker.bootstrap, {uuid.UUID(warm.json()["event_id"])})
        own_broker.kill()
        ids = set()
        for _ in range(20):
            response = await post(client, "gridworker", record("gridworker"))
            assert response.status_code == 202
            ids.add(uuid.UUID(response.json()["event_id"]))

        async def degraded() -> bool:
            ready = await client.get("/readyz")
            return ready.status_code == 200 and ready.json()["status"] == "degraded"

        await eventually(degraded, timeout_s=30)
        backlog = (await client.get("/metrics")).text
        assert "outbox_backlog 2" in backlog or "outbox_backlog 1" in backlog  # ≥ 10 waiting
        own_broker.start()  # a fresh (empty) broker on the same port
        found = await events_for(own_broker.bootstrap, ids, timeout_s=60)
        assert set(found) == ids

        async def ready_again() -> bool:
            return bool((await client.get("/readyz")).json()["status"] == "ready")

        await eventually(ready_again, timeout_s=30)


async def test_connections_killed_by_the_server_answer_503_then_recover(
    own_database_url: str, kafka: TansuBroker
) -> None:
    """The pooled connections die under the service (a database restart, a failover): the request
    that meets a dead one answers 503 — never 500, never a lost 202 — and the pool heals."""
    async with serve(create_app(settings_for(own_database_url, kafka.bootstrap, db_pool_size=2))) as client:
        warm = await asyncio.gather(*(post(client, "gridworker", record("gridworker")) for _ in range(4)))
        assert all(r.status_code == 202 for r in warm)
        admin = create_engine(own_database_url)
        try:
            async with admin.connect() as conn:
                killed = await conn.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = 'intake' AND datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
        finally:
            await admin.dispose()
        assert killed >= 1
        statuses = [(await post(client, "gridworker", record("gridworker"))).status_code for _ in range(6)]
        assert set(statuses) <= {202, 503}, statuses
        assert statuses[-1] == 202, statuses  # dead connections were discarded, fresh ones work


async def test_database_down_answers_503_never_202(kafka: TansuBroker) -> None:
    dead = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    async with serve(create_app(settings_for(dead, kafka.bootstrap))) as client:
        response = await post(client, "12345", record("12345"))
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"]["ok"] is False
        assert (await client.get("/healthz")).status_code == 200


async def test_accepted_row_and_its_event_are_written_together_and_published_once(
    database_url: str, client: httpx.AsyncClient, kafka: TansuBroker
) -> None:
    body = record("cityops")
    event_id = uuid.UUID((await post(client, "cityops", body)).json()["event_id"])
    await events_for(kafka.bootstrap, {event_id})
    engine = create_engine(database_url)

    async def published_and_kept() -> bool:
        # Published: no longer pending, and kept (with where it went) until dispatch has it.
        async with engine.connect() as conn:
            query = text(
                "SELECT count(p.id), count(k.id) FROM intake.outbox o "
                "LEFT JOIN intake.outbox_pending p ON p.id = o.id "
                "LEFT JOIN intake.outbox_published k ON o.id = ANY(k.outbox_ids) WHERE o.event_id = :e"
            )
            pending, kept = (await conn.execute(query, {"e": event_id})).one()
            return bool(pending == 0 and kept == 1)

    try:
        async with engine.connect() as conn:
            n_accepted = (
                await conn.execute(
                    text("SELECT count(*) FROM intake.accepted_events WHERE event_id = :e"), {"e": event_id}
                )
            ).scalar_one()
        assert n_accepted == 1
        await eventually(published_and_kept, timeout_s=10)
    finally:
        await engine.dispose()
    records = await read_topic(kafka.bootstrap, INCIDENT_REPORTED, expect=10**9, timeout_s=1.0)
    assert sum(1 for rec in records if decode_envelope(rec.value).id == event_id) == 1


async def test_intake_killed_before_publishing_loses_nothing(own_database_url: str) -> None:
    """Accepted while no broker is reachable, then the process goes away: the next instance publishes."""
    broker = TansuBroker()  # not started yet: its port refuses connections
    ids = set()
    async with serve(create_app(settings_for(own_database_url, broker.bootstrap))) as client:
        for _ in range(10):
            response = await post(client, "12345", record("12345"))
            assert response.status_code == 202
            ids.add(uuid.UUID(response.json()["event_id"]))
    broker.start()
    try:
        async with serve(create_app(settings_for(own_database_url, broker.bootstrap))):
            found = await events_for(broker.bootstrap, ids, timeout_s=60)
            assert set(found) == ids
    finally:
        broker.stop()
