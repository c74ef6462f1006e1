"""审批办件 and 监测告警 at intake (pure): validation naming fields, normalisation, masking, clearing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from services.intake.alarms import clearing_of, is_clearing
from services.intake.approvals import id_hash
from services.intake.normalise import normalise
from services.intake.schemas import EXAMPLES, SOURCE_MODELS
from shared.events import (
    AlarmReported,
    ApprovalReported,
    alarm_cleared_event_id,
    decode_envelope,
    incident_event_id,
    make_envelope,
)

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _normalise(source: str, **changes: Any) -> Any:
    body = {**EXAMPLES[source], **changes}
    record = SOURCE_MODELS[source].model_validate(body, context={"now": NOW})
    return normalise(source, record, received_at=NOW, phone_salt="salt")


def test_an_approval_becomes_an_approval_reported_keyed_by_item_code() -> None:
    event = _normalise("approval")
    assert isinstance(event, ApprovalReported)
    assert event.event_id == incident_event_id("approval", "SP-20261124-0301")
    assert event.category_key == "SPJY-001" and event.category_name == "食品经营许可"
    assert event.approval.result == "approved_with_conditions" and event.approval.supervise_within_days == 10
    # an org keeps its name and 统一社会信用代码
    assert event.approval.applicant.name == "枫林镇好味道餐饮店"
    assert event.approval.applicant.credit_code == "92330127MA2H3K4L5P"
    assert event.reported_at.isoformat() == "2026-11-24T15:30:00+08:00"


def test_a_person_applicant_is_masked_like_a_caller() -> None:
    person = {"kind": "person", "name": "张三", "credit_code": "330127199001011234"}
    event = _normalise("approval", applicant=person, conditions="联系人 13812345678")
    applicant = event.approval.applicant
    # 18 characters: first three and last four kept, 18 − 7 = 11 stars
    assert applicant.credit_code == "330" + "*" * 11 + "1234"
    assert applicant.name is None and "张三" not in event.model_dump_json()
    assert "330127199001011234" not in event.model_dump_json()
    assert applicant.id_hash == id_hash("330127199001011234", "salt") != id_hash("330127199001011234", "other")
    assert event.approval.conditions == "联系人 138****5678"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"result": "maybe"}, "result"),
        ({"applicant": {"kind": "robot", "name": "x"}}, "kind"),
        ({"item_code": ""}, "item_code"),
        ({"supervise_within_days": 0}, "supervise_within_days"),
    ],
)
def test_a_bad_approval_names_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        SOURCE_MODELS["approval"].model_validate({**EXAMPLES["approval"], **change}, context={"now": NOW})
    assert field in {str(p) for e in info.value.errors() for p in e["loc"]}


@pytest.mark.parametrize("level, urgency", [("info", "normal"), ("warning", "normal"), ("alarm", "urgent"),
                                            ("critical", "critical")])
def test_an_alarm_level_maps_to_urgency(level: str, urgency: str) -> None:
    event = _normalise("alarm", level=level)
    assert isinstance(event, AlarmReported) and event.urgency == urgency


def test_an_alarm_keeps_its_device_and_snapshot() -> None:
    event = _normalise("alarm", value=3.2, threshold=2.5)
    assert event.category_key == "AI-ZDJY" and event.source == "alarm" and event.reporter_kind == "sensor"
    assert event.alarm.device_id == "CAM-FL-0107" and event.alarm.confidence == 0.82
    assert event.attachments == [EXAMPLES["alarm"]["snapshot_url"]]
    assert "读数 3.2 / 阈值 2.5" in event.description


@pytest.mark.parametrize(
    "change, field",
    [({"location": None}, "location"), ({"confidence": 1.5}, "confidence"), ({"device_kind": "radar"}, "device_kind"),
     ({"cleared_at": "2026-11-24T09:00:00+08:00"}, "cleared_at is before raised_at")],
)
def test_a_bad_alarm_names_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        SOURCE_MODELS["alarm"].model_validate({**EXAMPLES["alarm"], **change}, context={"now": NOW})
    named = {str(p) for e in info.value.errors() for p in e["loc"]} | {e["msg"] for e in info.value.errors()}
    assert any(field in n for n in named)


def test_a_clearing_adds_cleared_at_and_perhaps_level_only() -> None:
    stored = dict(EXAMPLES["alarm"])
    cleared = {**stored, "cleared_at": "2026-11-24T09:40:00+08:00"}
    assert is_clearing(stored, cleared)
    assert is_clearing(stored, {**cleared, "level": "info"})
    assert not is_clearing(stored, {**cleared, "confidence": 0.5})  # any other change: conflict
    assert not is_clearing(stored, stored)  # nothing cleared
    assert not is_clearing(cleared, {**cleared, "cleared_at": "2026-11-24T09:50:00+08:00"})  # cleared already


def test_the_cleared_event_keeps_the_alarm_key_and_round_trips() -> None:
    event = _normalise("alarm", cleared_at="2026-11-24T09:40:00+08:00", level="info")
    fact = clearing_of(event)
    assert fact.event_id == event.event_id and fact.level == "info"
    env = make_envelope(event_type="alarm.cleared", data=fact, source="/intake/alarm", correlation_id="c",
                        subject=str(event.event_id), time=NOW, event_id=alarm_cleared_event_id(event.event_id))
    assert decode_envelope(env.to_bytes()) == env


@pytest.mark.parametrize("source, event_type", [("approval", "approval.reported"), ("alarm", "alarm.reported")])
def test_new_kinds_round_trip_through_the_contract(source: str, event_type: str) -> None:
    event = _normalise(source)
    env = make_envelope(event_type=event_type, data=event, source=f"/intake/{source}", correlation_id="c",
                        subject=str(event.event_id), time=NOW, event_id=event.event_id)
    back = decode_envelope(env.to_bytes(data_json=event.model_dump_json()))
    assert back == env and type(back.data) is type(event)
