"""Tests for dispatch's classification and rule steps: source code → matter, first matching rule.

派遣的定性与规则步骤：来源编码 → 事项、第一条命中的规则。
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.dispatch.classification import cityops_key_candidates, matter_for_cityops, matter_for_source
from services.dispatch.rules import RuleFacts, first_matching_rule
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "deploy" / "demo" / "county.json"

BAISHA, QINGXI, FENGLIN = "330127001", "330127101", "330127102"


@pytest.fixture(scope="module")
def snap() -> JurisdictionSnapshot:
    bundle = JurisdictionBundle.model_validate(json.loads(DEMO.read_text(encoding="utf-8")))
    return JurisdictionSnapshot(bundle, version=3, rules_version=7)


def test_source_mappings(snap: JurisdictionSnapshot) -> None:
    assert matter_for_source(snap, "12345", "010101") == "SR001"
    assert matter_for_source(snap, "12345", " 010101 ") == "SR001"
    assert matter_for_source(snap, "12345", "999999") is None
    assert matter_for_source(snap, "cityops", "01-01") == "WJ001"
    assert matter_for_source(snap, "cityops", "01-001") == "WJ001"
    assert matter_for_source(snap, "cityops", "01-009") == "HB005"  # only the 2-digit code is mapped
    assert matter_for_source(snap, "cityops", "06-10") == "ZJ003"  # only the 3-digit code is mapped
    assert matter_for_source(snap, "cityops", "1-1") == "WJ001"
    assert matter_for_source(snap, "cityops", "05/003") == "SR001"
    assert matter_for_source(snap, "cityops", "99-01") is None
    assert matter_for_cityops(snap, "5", "4") == "SR005"
    assert matter_for_source(snap, "gridworker", "GW-SR-01") == "SR001"
    assert matter_for_source(snap, "gridworker", "gw-sr-01") == "SR001"
    assert matter_for_source(snap, "nosuchsource", "x") is None
    assert cityops_key_candidates("01-009") == ["01-009", "01-09"]
    assert cityops_key_candidates("0101") == ["0101", "01-01", "01-001"]


def test_first_matching_rule(snap: JurisdictionSnapshot) -> None:
    priorities = [r.priority for r in snap.rules]
    assert priorities == sorted(priorities)
    gas = first_matching_rule(
        snap, RuleFacts(matter="AQ003", township=QINGXI, source="12345", urgency="critical", text="小区燃气管道有异味")
    )
    assert gas is not None and gas.id == "gas-qingxi" and gas.action.unit == f"{QINGXI}-yjgl"
    assert gas.action.cohandlers == ["pz-pcs-qingxi"]
    critical = first_matching_rule(snap, RuleFacts(matter="SR001", township=BAISHA, urgency="critical"))
    assert critical is not None and critical.action.deadline_hours == 1
    school = first_matching_rule(
        snap, RuleFacts(matter="SR003", township=BAISHA, grid="330127001001001", urgency="normal")
    )
    assert school is not None and school.id == "school-vendors"
    assert first_matching_rule(snap, RuleFacts(matter="SR001", township=FENGLIN, urgency="normal")) is None
