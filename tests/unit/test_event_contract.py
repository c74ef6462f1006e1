"""The event contract: docs in sync, envelopes round-trip, unknown or malformed messages refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.event_docs import render_docs
from shared.events import (
    CASE_EVENT_TYPES,
    TOPICS,
    ContractError,
    JurisdictionChanged,
    decode_envelope,
    incident_event_id,
    make_envelope,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_docs_match_the_models() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_docs(), "run `make docs` (python -m shared.event_docs)"


def test_every_topic_is_documented_with_its_types() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name, spec in TOPICS.items():
        assert f"## `{name}`" in text and f"`{name}.dlq`" in text
        for event_type in spec.event_types:
            assert f"`{event_type}`" in text
    assert all(t.startswith("case.") for t in CASE_EVENT_TYPES)


def test_envelope_round_trip_and_headers() -> None:
    data = JurisdictionChanged(county_code="330127", version=2, rules_version=3, digest="abc", change="rules")
    env = make_envelope(event_type="jurisdiction.changed", data=data, source="/grid", correlation_id="req-1",
                        subject="330127", time=datetime(2026, 11, 24, 8, tzinfo=UTC))
    back = decode_envelope(env.to_bytes())
    assert back == env and isinstance(back.data, JurisdictionChanged)
    headers = dict(env.headers())
    assert headers["ce_type"] == b"jurisdiction.changed" and headers["correlation_id"] == b"req-1"


@pytest.mark.parametrize("source", ["12345", "cityops", "gridworker"])
def test_envelope_with_the_payload_serialised_once_is_the_same_bytes(source: str) -> None:
    from services.intake.normalise import normalise
    from services.intake.schemas import EXAMPLES, SOURCE_MODELS

    when = datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    event = normalise(source, SOURCE_MODELS[source].model_validate(EXAMPLES[source]), received_at=when,
                      phone_salt="salt")
    env = make_envelope(event_type="incident.reported", data=event, source=f"/intake/{source}",
                        correlation_id="req-2", subject=str(event.event_id), time=when, event_id=event.event_id)
    spliced = env.to_bytes(data_json=event.model_dump_json())
    assert spliced == env.to_bytes()
    assert decode_envelope(spliced) == env
    assert env.headers() == [(k, v.encode()) for k, v in env.header_pairs()]


@pytest.mark.parametrize("raw, message", [
    (None, "empty"),
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"type": "nobody.knows"}', "unknown event type"),
    (b'{"type": "jurisdiction.changed", "schema_version": 9}', "unsupported schema_version"),
    (b'{"type": "jurisdiction.changed", "schema_version": 1, "id": "x"}', "invalid jurisdiction.changed"),
])
def test_malformed_messages_are_contract_errors(raw: bytes | None, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        decode_envelope(raw)


def test_payload_must_match_its_type() -> None:
    data = JurisdictionChanged(county_code="1", version=1, rules_version=1, digest="d", change="bundle")
    with pytest.raises(ContractError):
        make_envelope(event_type="case.accepted", data=data, source="/x", correlation_id="c", subject=None,
                      time=datetime.now(UTC))


def test_incident_ids_are_deterministic_per_source() -> None:
    assert incident_event_id("12345", "A1") == incident_event_id("12345", "A1")
    assert incident_event_id("12345", "A1") != incident_event_id("cityops", "A1")
    assert isinstance(incident_event_id("gridworker", "x"), uuid.UUID)
