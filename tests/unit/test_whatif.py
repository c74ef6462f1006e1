"""What-if 模拟调整 (pure): moves, unit and township loads, by hand on the demo county.

模拟调整（纯计算）：按示范县手算改派、单位与镇街负荷。
"""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import pytest

from services.dispatch.whatif import AffectedGroup, SettledGroup, keyword_list, proposed_snapshot, what_if
from shared.calendar import load_calendar
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot
from shared.jurisdiction.devolution import ProposedItem

ROOT = Path(__file__).resolve().parents[2]
DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
QINGXI, FENGLIN = "330127101", "330127102"
G_QINGXI = "330127101001003"  # 青溪社区第3网格


def group(*, urgency: str = "urgent", keywords: frozenset[str] = frozenset(), cases: int = 1) -> AffectedGroup:
    return AffectedGroup(
        township=QINGXI,
        matter="SR001",
        grid=G_QINGXI,
        source="12345",
        appeal_type="complaint",
        urgency=urgency,
        day=date(2026, 10, 8),
        keywords=keywords,
        cases=cases,
    )


def test_returning_a_matter_moves_its_cases_and_the_hours_by_hand() -> None:
    before = JurisdictionSnapshot(JurisdictionBundle.model_validate(copy.deepcopy(DEMO)), version=1, rules_version=1)
    calendar = load_calendar(county="330127")
    assert calendar.hours_per_day == 7.5
    after, problems = proposed_snapshot(before, [ProposedItem(township=QINGXI, matter="SR001", mode="none")])
    assert problems == []
    assert keyword_list(before) == ("液化气", "煤气", "燃气")
    result = what_if(
        before=before,
        after=after,
        calendar=calendar,
        # Outside the proposal: 3 一般件 of 占道经营 at 枫林镇执法队 — 5 working days × 7.5 h = 37.5 h each.
        settled=[SettledGroup("330127102-zfd", "SR001", "normal", None, 3)],
        affected=[
            group(cases=2),  # 紧急件 8 h each: 青溪镇执法队 → 城管局 (no 城管 agency covers 青溪镇)
            group(keywords=frozenset({"燃气"})),  # rule gas-qingxi: 青溪镇应急管理办 before and after
        ],
        threshold_pct=10,
    )
    assert (result.cases, result.affected_cases, result.moved_cases) == (6, 3, 2)
    assert result.moves == [
        {
            "matter": "SR001",
            "matter_name": "占道经营",
            "from_unit": "330127101-zfd",
            "from_name": "青溪镇综合行政执法队",
            "to_unit": "dept-cgj",
            "to_name": "青溪县城市管理局",
            "cases": 2,
            "hours": 16.0,  # 2 × 8
        }
    ]
    units = {
        u["unit"]: (u["cases_before"], u["cases_after"], u["hours_before"], u["hours_after"]) for u in result.units
    }
    assert units == {
        "330127102-zfd": (3, 3, 112.5, 112.5),  # 3 × 37.5
        "330127101-zfd": (2, 0, 16.0, 0.0),
        "dept-cgj": (0, 2, 0.0, 16.0),
        "330127101-yjgl": (1, 1, 8.0, 8.0),
    }
    towns = {t["township"]: t for t in result.townships}
    # 青溪镇's own units: 16 + 8 = 24 h before, 8 h after → (8 − 24) / 24 = −66.67 %.
    assert (towns[QINGXI]["hours_before"], towns[QINGXI]["hours_after"]) == (24.0, 8.0)
    assert towns[QINGXI]["growth_pct"] == pytest.approx(-66.67)
    assert towns[QINGXI]["over_threshold"] is False
    assert (towns[FENGLIN]["hours_before"], towns[FENGLIN]["growth_pct"]) == (112.5, 0.0)


def test_devolving_grows_the_township_past_the_threshold() -> None:
    before = JurisdictionSnapshot(JurisdictionBundle.model_validate(copy.deepcopy(DEMO)), version=1, rules_version=1)
    calendar = load_calendar(county="330127")
    after, _ = proposed_snapshot(before, [ProposedItem(township=QINGXI, matter="SC001", mode="entrusted")])
    sc001 = AffectedGroup(QINGXI, "SC001", G_QINGXI, "12345", "complaint", "urgent", date(2026, 10, 8), frozenset(), 4)
    result = what_if(
        before=before,
        after=after,
        calendar=calendar,
        settled=[SettledGroup("330127101-zfd", "SR001", "urgent", None, 4)],  # 4 × 8 = 32 h
        affected=[sc001],  # 无照经营 紧急件 8 h each: 青溪所 → 青溪镇执法队 (委托)
        threshold_pct=50,
    )
    qingxi = next(t for t in result.townships if t["township"] == QINGXI)
    # 32 h → 32 + 4 × 8 = 64 h: +100 % > 50 %.
    assert (qingxi["hours_before"], qingxi["hours_after"], qingxi["growth_pct"]) == (32.0, 64.0, 100.0)
    assert qingxi["over_threshold"] is True
    assert [(m["from_unit"], m["to_unit"], m["cases"]) for m in result.moves] == [
        ("pz-scjgs-qingxi", "330127101-zfd", 4)
    ]


def test_proposal_problems_name_the_items() -> None:
    before = JurisdictionSnapshot(JurisdictionBundle.model_validate(copy.deepcopy(DEMO)), version=1, rules_version=1)
    _, problems = proposed_snapshot(
        before,
        [
            ProposedItem(township=QINGXI, matter="ZJ005", mode="assist"),  # 路灯: 青溪镇 has no "urban" unit
            ProposedItem(township=FENGLIN, matter="SR001", mode="none"),
            ProposedItem(township=FENGLIN, matter="SR001", mode="assist"),
        ],
    )
    assert sorted({p.path for p in problems}) == ["items[0]", "items[2]"]
