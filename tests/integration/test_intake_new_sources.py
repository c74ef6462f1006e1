"""审批办件 and 监测告警 at intake, end to end: real HTTP through the ASGI app, real PostgreSQL, real Tansu.

Approvals and alarms are published as their own kinds on ``incident.reported``; an alarm posted
again with ``cleared_at`` (and possibly ``level``) added answers 200 ``updated`` and publishes one
``alarm.cleared``; any other change under the same ``alarm_id`` is still 409.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from services.intake.app import create_app
from services.intake.schemas import EXAMPLES, SOURCE_ID_FIELD
from services.intake.settings import IntakeSettings
from shared.embedded import TansuBroker
from shared.events import INCIDENT_REPORTED, alarm_cleared_event_id, decode_envelope, incident_event_id
from tests.conftest import read_topic
from tests.helpers import eventually, serve

KEYS = {"approval": "k-approval", "alarm": "k-alarm", "gridworker": "k-grid"}
STAFF = orjson.dumps({"t-admin": {"role": "admin", "township": "*"}}).decode()


@pytest.fixture(scope="module")
async def client(database_url: str, module_broker: TansuBroker) -> AsyncIterator[httpx.AsyncClient]:
    settings = IntakeSettings(
        database_url=database_url,
        kafka_bootstrap_servers=module_broker.bootstrap,
        api_keys=orjson.dumps({s: [k] for s, k in KEYS.items()}).decode(),
        staff_tokens=STAFF,
        phone_hash_salt="test-salt",
        outbox_poll_interval_s=0.1,
        log_json=False,
    )
    async with serve(create_app(settings)) as c:
        yield c


def record(source: str, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLES[source])
    body[SOURCE_ID_FIELD[source]] = f"{source}-{uuid.uuid4().hex[:10]}"  # type: ignore[index]
    body.update(changes)
    return body


async def post(client: httpx.AsyncClient, source: str, body: Any, *, batch: bool = False) -> httpx.Response:
    path = f"/v1/events/{source}" + ("/batch" if batch else "")
    return await client.post(path, json=body, headers={"X-API-Key": KEYS[source]})


async def published(bootstrap: str, ids: set[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    """Every record on ``incident.reported`` whose envelope id is in ``ids`` (waits until each is there)."""
    found: dict[uuid.UUID, list[Any]] = {}

    async def check() -> bool:
        found.clear()
        for rec in await read_topic(bootstrap, INCIDENT_REPORTED, expect=10**9, timeout_s=1.0):
            env = decode_envelope(rec.value)
            if env.id in ids:
                found.setdefault(env.id, []).append((env, rec))
        return ids <= set(found)

    await eventually(check, timeout_s=20.0, every_s=0.2)
    return found


async def test_an_approval_is_published_as_approval_reported(client: httpx.AsyncClient,
                                                             module_broker: TansuBroker) -> None:
    body = record("approval", applicant={"kind": "person", "name": "张三", "credit_code": "330127199001011234"})
    response = await post(client, "approval", body)
    assert response.status_code == 202, response.text
    event_id = incident_event_id("approval", body["approval_no"])
    assert response.json() == {"event_id": str(event_id), "status": "accepted"}
    [(envelope, rec)] = (await published(module_broker.bootstrap, {event_id}))[event_id]
    assert envelope.type == "approval.reported" and rec.key == str(event_id).encode()
    assert envelope.data.approval.applicant.credit_code == "330***********1234"
    assert b"330127199001011234" not in rec.value and "张三".encode() not in rec.value
    again = await post(client, "approval", copy.deepcopy(body))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    changed = await post(client, "approval", {**body, "result": "revoked"})
    assert changed.status_code == 409 and changed.json()["event_id"] == str(event_id)


async def test_a_bad_approval_is_422_naming_the_fields(client: httpx.AsyncClient) -> None:
    body = record("approval", result="maybe")
    del body["applicant"]
    response = await post(client, "approval", body)
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert {("body", "result"), ("body", "applicant")} <= locs


async def test_the_other_producers_key_is_403(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events/alarm", json=record("alarm"), headers={"X-API-Key": KEYS["approval"]})
    assert response.status_code == 403


async def test_an_alarm_cleared_later_is_an_update_and_any_other_change_409(
    client: httpx.AsyncClient, module_broker: TansuBroker
) -> None:
    body = record("alarm")
    first = await post(client, "alarm", body)
    assert first.status_code == 202, first.text
    event_id = uuid.UUID(first.json()["event_id"])
    cleared = {**body, "cleared_at": "2026-11-24T09:40:00+08:00", "level": "info"}
    update = await post(client, "alarm", cleared)
    assert update.status_code == 200 and update.json() == {"event_id": str(event_id), "status": "updated"}
    # the same clearing again is a duplicate; a change of anything else is still a conflict
    assert (await post(client, "alarm", copy.deepcopy(cleared))).json()["status"] == "duplicate"
    assert (await post(client, "alarm", {**cleared, "confidence": 0.3})).status_code == 409
    assert (await post(client, "alarm", body)).status_code == 409  # un-clearing is a change too
    clear_id = alarm_cleared_event_id(event_id)
    found = await published(module_broker.bootstrap, {event_id, clear_id})
    [(reported, rec1)], [(clearing, rec2)] = found[event_id], found[clear_id]
    assert reported.type == "alarm.reported" and reported.data.alarm.cleared_at is None
    assert clearing.type == "alarm.cleared" and clearing.data.event_id == event_id and clearing.data.level == "info"
    assert rec1.key == rec2.key == str(event_id).encode()  # one partition: the clearing follows its alarm
    raw = await client.get(f"/v1/events/{event_id}/raw", headers={"Authorization": "Bearer t-admin"})
    assert raw.json()["raw"]["cleared_at"] == "2026-11-24T09:40:00+08:00"
    assert raw.json()["normalised"]["alarm"]["level"] == "info"


async def test_an_alarm_batch_answers_per_item_with_the_clearing_updated(client: httpx.AsyncClient) -> None:
    a, b = record("alarm"), record("alarm", device_kind="smoke", alarm_type="YG-01", confidence=None)
    bad = record("alarm", level="loud")
    cleared_a = {**a, "cleared_at": "2026-11-24T09:20:00+08:00"}
    response = await post(client, "alarm", {"events": [a, b, bad, cleared_a, copy.deepcopy(b)]}, batch=True)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [r["status"] for r in answer["results"]] == ["accepted", "accepted", "rejected", "updated", "duplicate"]
    assert (answer["accepted"], answer["duplicates"], answer["rejected"], answer["updated"]) == (2, 1, 1, 1)
    assert answer["results"][2]["errors"][0]["loc"] == ["events", 2, "level"]
