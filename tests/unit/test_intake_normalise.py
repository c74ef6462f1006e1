"""Normalisation rules of intake (pure): masking, hashing, codes, urgency, times, CRS."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.intake.normalise import content_hash, mask_phone, normalise, phone_hash
from services.intake.schemas import EXAMPLES, SOURCE_MODELS
from shared.geo import haversine_m, wgs84_to_bd09, wgs84_to_gcj02

NOW = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize("phone, masked", [
    ("13812345678", "138****5678"),
    ("+86 138-1234-5678", "138****5678"),
    ("057188886666", "057*****6666"),
    ("110", "*10"),
])
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_phone_hash_links_the_same_caller_and_depends_on_the_salt() -> None:
    assert phone_hash("13812345678", "s") == phone_hash("+86 138 1234 5678", "s")
    assert phone_hash("13812345678", "s") != phone_hash("13812345679", "s")
    assert phone_hash("13812345678", "s") != phone_hash("13812345678", "t")


def test_content_hash_ignores_key_order() -> None:
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})


def _normalise(source: str, **changes: object):  # type: ignore[no-untyped-def]
    body = {**EXAMPLES[source], **changes}
    record = SOURCE_MODELS[source].model_validate(body, context={"now": NOW})
    return normalise(source, record, received_at=NOW, phone_salt="salt")  # type: ignore[arg-type]


@pytest.mark.parametrize("severity, urgency", [("general", "normal"), ("major", "urgent"), ("serious", "critical")])
def test_grid_severity_maps_to_urgency(severity: str, urgency: str) -> None:
    assert _normalise("gridworker", severity=severity).urgency == urgency


def test_category_keys_per_source() -> None:
    assert _normalise("12345").category_key == "010101"
    assert _normalise("cityops", minor_code="02").category_key == "01-02"
    assert _normalise("gridworker").category_key == "GW-WJ-01"


def test_naive_time_is_shanghai() -> None:
    event = _normalise("cityops", reported_at="2026-11-24T08:00:00")
    assert event.reported_at.isoformat() == "2026-11-24T08:00:00+08:00"


@pytest.mark.parametrize("convert, crs", [(wgs84_to_gcj02, "gcj02"), (wgs84_to_bd09, "bd09")])
def test_points_are_converted_back_to_wgs84(convert, crs: str) -> None:  # type: ignore[no-untyped-def]
    lng, lat = 119.0301, 29.5893
    shifted = convert(lng, lat)
    event = _normalise("cityops", location={"lng": shifted[0], "lat": shifted[1], "crs": crs})
    assert event.location is not None
    assert haversine_m(event.location.lng, event.location.lat, lng, lat) < 0.5
    assert event.location.original_crs == crs


def test_cgcs2000_is_taken_as_wgs84_and_phone_never_leaves_in_clear() -> None:
    event = _normalise("12345", location={"lng": 119.04, "lat": 29.6, "crs": "cgcs2000"})
    assert event.location is not None and (event.location.lng, event.location.lat) == (119.04, 29.6)
    assert "13812345678" not in event.model_dump_json()
