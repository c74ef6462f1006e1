"""The approval and alarm sections of a jurisdiction bundle: validation, snapshot defaults, the demo."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from shared.jurisdiction import BundleInvalidError, JurisdictionBundle, JurisdictionSnapshot
from shared.jurisdiction.canonical import bundle_digest

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "county.json"


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEMO.read_text(encoding="utf-8"))
    return data


def _snapshot(data: dict[str, Any]) -> JurisdictionSnapshot:
    return JurisdictionSnapshot(JurisdictionBundle.model_validate(data), version=1, rules_version=1)


def test_the_demo_maps_approvals_and_alarms_to_matters(demo: dict[str, Any]) -> None:
    snap = _snapshot(demo)
    assert snap.source_mapping("approval")["SPJY-001"] == "JG001"  # 食品经营许可 → 食品经营事中事后监管
    assert snap.source_mapping("approval")["HWGG-001"] == "JG002"  # 户外广告设置 → 城市管理
    matter = snap.matter("JG001")
    assert matter is not None and matter.supervise_within_days == 10 and matter.department == "dept-scjgj"
    alarm = snap.source_mapping("alarm")
    assert (alarm["SW-HIGH"], alarm["YG-01"], alarm["JG-WY"], alarm["AI-ZDJY"]) == ("SL003", "AQ007", "ZJ003", "SR001")
    assert snap.alarm_type("SW-HIGH").burst_window_minutes == 60
    # a type the bundle does not list: the defaults (复核 below 0.6, 30 minutes)
    default = snap.alarm_type("NOT-LISTED")
    assert (default.confidence_threshold, default.burst_window_minutes) == (0.6, 30)


def test_an_approval_mapped_to_a_matter_without_its_supervision_days_is_refused(demo: dict[str, Any]) -> None:
    data = copy.deepcopy(demo)
    data["source_mappings"]["approval"]["XK-9"] = "SR002"  # 暴露垃圾 has no 监管时限
    with pytest.raises(BundleInvalidError) as info:
        _snapshot(data)
    assert any(p.path == "source_mappings.approval.XK-9" for p in info.value.problems)


def test_settings_of_an_unmapped_alarm_type_are_refused(demo: dict[str, Any]) -> None:
    data = copy.deepcopy(demo)
    data["alarm_types"]["NOISE-9"] = {"confidence_threshold": 0.5}
    with pytest.raises(BundleInvalidError) as info:
        _snapshot(data)
    assert any(p.path == "alarm_types.NOISE-9" for p in info.value.problems)


def test_a_bundle_without_the_new_sections_keeps_its_digest(demo: dict[str, Any]) -> None:
    data = copy.deepcopy(demo)
    data.pop("alarm_types")
    for matter in data["matters"]:
        matter.pop("supervise_within_days", None)
    with_nulls = copy.deepcopy(data)
    for matter in with_nulls["matters"]:
        matter["supervise_within_days"] = None
    with_nulls["alarm_types"] = {}
    assert bundle_digest(JurisdictionBundle.model_validate(data)) == bundle_digest(
        JurisdictionBundle.model_validate(with_nulls)
    )
