"""Who a figure counts for 指标归属: 退单率 for every rejecting unit, dispatchers' 准确派遣率, and
派驻机构 ranked township-led only. Pure rules; the hand arithmetic is written beside each figure."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.metrics.dispatchers import dispatcher_counts
from services.metrics.fact_counts import rejecting_units, unit_counts
from services.metrics.facts import CaseFact
from services.metrics.indicators import empty_counts, rates_from_counts
from services.metrics.periods import parse_period
from services.metrics.scoring import AssessmentScheme, IndicatorRow, load_schemes, score_units
from tests.unit.test_metrics_rules import PRESETS, Case, bj, dispatch, finish

NOVEMBER = parse_period("2026-11")
AS_OF = NOVEMBER.end


def cid(name: str) -> str:
    """A case id (a UUID, as stored) named for the reader. 案件 id。"""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"attribution/{name}"))


def _actor(name: str, role: str = "dispatcher") -> dict[str, Any]:
    return {"role": role, "name": name, "unit": None, "township": "*"}


def bounced_cases() -> list[CaseFact]:
    """U1 holds two cases of its own, bounces one to U2 (no ruling yet), has one rejection ruled
    invalid (the case comes back to U1) and one ruled valid (U2 takes it)."""
    out = []
    for n in (1, 2):  # U1's own cases 本单位案件
        out.append(finish(dispatch(Case(cid(f"own{n}")), "U1", "T1", bj(11, n + 1)), bj(11, n + 2)).fact())
    bounced = dispatch(Case(cid("bounced")), "U1", "T1", bj(11, 5))
    bounced.add("case.rejected", bj(11, 5, 10), rejected_unit="U1", reason="不归我管")
    bounced.add("case.dispatched", bj(11, 5, 11), unit="U2", township="T1")  # re-dispatched, no ruling yet
    out.append(finish(bounced, bj(11, 6)).fact())
    invalid = dispatch(Case(cid("invalid")), "U1", "T1", bj(11, 9))
    invalid.add("case.rejected", bj(11, 9, 10), rejected_unit="U1", reason="不归我管")
    invalid.add("case.dispatched", bj(11, 9, 11), unit="U2", township="T1")
    invalid.add("case.rejection_ruled", bj(11, 9, 12), rejected_unit="U1", valid=False)  # back to U1
    out.append(invalid.fact())
    valid = dispatch(Case(cid("valid")), "U1", "T1", bj(11, 10))
    valid.add("case.rejected", bj(11, 10, 10), rejected_unit="U1", reason="属县级部门职责")
    valid.add("case.rejection_ruled", bj(11, 10, 11), rejected_unit="U1", valid=True)
    valid.add("case.dispatched", bj(11, 10, 12), unit="U2", township="T1")
    out.append(valid.fact())
    return out


def test_every_rejecting_unit_sees_its_rejections() -> None:
    facts = bounced_cases()
    by_id = {f.case_id: f for f in facts}
    assert rejecting_units(by_id[cid("bounced")], AS_OF) == ["U1"]  # U2 holds it, U1 bounced it
    assert rejecting_units(by_id[cid("invalid")], AS_OF) == []  # U1 holds it again: counted as the holder's
    assert rejecting_units(by_id[cid("valid")], AS_OF) == []  # ruled valid: outside U1's remit, never counts
    counts = unit_counts(facts, AS_OF)
    u1, u2 = counts[("U1", "T1")], counts[("U2", "T1")]
    # U1 holds own1, own2, invalid → 派遣 3; receives those + the bounced one → 4;
    # 退单: invalid (ruled invalid, as holder) + bounced (not ruled) = 2 → 退单率 2/4 = 0.5
    assert (u1["dispatched"], u1["received"], u1["rejected"]) == (3, 4, 2)
    assert rates_from_counts(u1)["rejection_rate"] == 0.5
    # the bounced case counts for U1 in 退单率 only: U1 resolved own1, own2 → 办结 2 of 派遣 3
    assert (u1["resolved"], rates_from_counts(u1)["resolution_rate"]) == (2, pytest.approx(2 / 3))
    # U2 holds bounced and valid → 派遣 2, 收案 2, 退单 0 → 退单率 0/2 = 0
    assert (u2["dispatched"], u2["received"], u2["rejected"]) == (2, 2, 0)
    assert rates_from_counts(u2)["rejection_rate"] == 0.0


def test_a_unit_that_only_bounces_gets_a_row() -> None:
    case = dispatch(Case(cid("x")), "U9", "T1", bj(11, 3))
    case.add("case.rejected", bj(11, 3, 10), rejected_unit="U9", reason="不归我管")
    case.add("case.dispatched", bj(11, 3, 11), unit="U2", township="T1")
    counts = unit_counts([case.fact()], AS_OF)
    u9 = counts[("U9", "T1")]
    # U9 holds nothing: 派遣 0, 收案 1, 退单 1 → 退单率 1/1 = 1.0; every other rate has no denominator
    assert (u9["dispatched"], u9["received"], u9["rejected"]) == (0, 1, 1)
    rates = rates_from_counts(u9)
    assert rates["rejection_rate"] == 1.0 and rates["resolution_rate"] is None


def dispatcher_cases() -> list[CaseFact]:
    """D1 and D2 dispatch by hand; the system's automatic dispatch is not a hand dispatch."""
    x = dispatch(Case(cid("x")), "U1", "T1", bj(11, 2))  # the system's dispatch: no actor 系统自动派遣
    x.add("case.triage_required", bj(11, 2, 10), reason="需人工")
    x.add("case.assigned", bj(11, 2, 11), unit="U1", township="T1", actor=_actor("D1"))
    x.add("case.rejected", bj(11, 2, 12), rejected_unit="U1", reason="非本单位")
    x.add("case.rejection_ruled", bj(11, 2, 13), rejected_unit="U1", valid=True)  # D1 was wrong
    y = Case(cid("y")).add("case.assigned", bj(11, 3), unit="U2", township="T1", actor=_actor("D1"))
    y.add("case.accepted", bj(11, 3, 10))  # D1 was right
    z = Case(cid("z")).add("case.assigned", bj(11, 4), unit="U1", township="T1", actor=_actor("D2"))
    z.add("case.reassigned", bj(11, 4, 10), unit="U2", township="T1", actor=_actor("D1"))  # D2 was wrong
    w = Case(cid("w")).add("case.assigned", bj(11, 5), unit="U1", township="T1", actor=_actor("D2"))
    w.add("case.rejected", bj(11, 5, 10), rejected_unit="U1", reason="非本单位")
    w.add("case.rejection_ruled", bj(11, 5, 11), rejected_unit="U1", valid=False)  # U1 was wrong, D2 right
    late = Case(cid("late")).add("case.assigned", bj(12, 2), unit="U1", township="T1", actor=_actor("D2"))
    return [c.fact() for c in (x, y, z, w, late)]


def test_dispatchers_accurate_dispatch_rate() -> None:
    facts = dispatcher_cases()
    counts = dispatcher_counts(facts, NOVEMBER.start, NOVEMBER.end, AS_OF)
    assert set(counts) == {"D1", "D2"}  # the system is nobody's hand dispatch
    d1, d2 = counts["D1"], counts["D2"]
    # D1: x (rejected validly ✗), y (✓), z's 改派 to U2 (✓) → 2 / 3
    assert (d1["hand_dispatched"], d1["accurately_dispatched"]) == (3, 2)
    assert rates_from_counts(d1)["accurate_dispatch_rate"] == pytest.approx(2 / 3)
    # D2: z (reassigned away ✗), w (rejection ruled invalid ✓); `late` is in December → 1 / 2
    assert (d2["hand_dispatched"], d2["accurately_dispatched"]) == (2, 1)
    assert rates_from_counts(d2)["accurate_dispatch_rate"] == 0.5
    # a unit's row has no hand dispatches: its 准确派遣率 has no denominator
    unit_rows = unit_counts(facts, AS_OF)
    assert all(rates_from_counts(c)["accurate_dispatch_rate"] is None for c in unit_rows.values())
    # as of 11-04 09:30 only x, y and z's first dispatch exist: D1 1/2, D2 0/1 (z reassigned later still
    # counts: a fact's counters are as of its last event)
    early = dispatcher_counts(facts, NOVEMBER.start, NOVEMBER.end, bj(11, 4, 9, 30))
    assert (early["D1"]["hand_dispatched"], early["D1"]["accurately_dispatched"]) == (2, 1)
    assert (early["D2"]["hand_dispatched"], early["D2"]["accurately_dispatched"]) == (1, 0)


def test_hand_dispatch_survives_the_event_order() -> None:
    case = Case(cid("z")).add("case.assigned", bj(11, 4), unit="U1", township="T1", actor=_actor("D2"))
    case.add("case.reassigned", bj(11, 4, 10), unit="U2", township="T1", actor=_actor("D1"))
    forward = case.fact()
    backward = Case(case.case_id)
    backward.events = list(reversed(case.events))
    assert backward.fact() == forward
    assert [(h.by, h.unit, h.accurate) for h in forward.hand_dispatches] == [("D2", "U1", False), ("D1", "U2", True)]


def test_stationed_agencies_are_ranked_township_led_only() -> None:
    schemes = load_schemes(PRESETS)
    hotline, led = schemes["hotline_three_rates"], schemes["stationed_agency_township_led"]
    assert "stationed_agency" not in hotline.unit_kinds
    counts = {**empty_counts(), "dispatched": 10, "received": 10, "responded_in_time": 10}
    counts.update(callbacks_valid=10, solved=9, satisfied=8, basically_satisfied=1)
    agency = IndicatorRow(unit="PCS-1", unit_kind="stationed_agency", township="T1", counts=counts)
    office = IndicatorRow(unit="W", unit_kind="township_office", township="T1", counts=counts)
    # 响应率 10/10 × 10 = 10; 解决率 9/10 × 50 = 45; 满意率 (8 + 0.9 × 1)/10 × 40 = 35.6 → 90.6
    assert [(r.unit, r.score) for r in score_units([agency, office], hotline)] == [("W", 90.6)]
    # a stored older standard version that still lists 派驻机构 does not rank them either
    old = hotline.model_copy(update={"version": 1, "unit_kinds": [*hotline.unit_kinds, "stationed_agency"]})
    assert [r.unit for r in score_units([agency, office], old)] == ["W"]
    assert [r.unit for r in score_units([agency], led, {("T1", "PCS-1"): 80})] == ["PCS-1"]
    # a new version may not add them back 新版本不得再把派驻机构纳入非“以乡镇为主”方案
    body = {**hotline.model_dump(mode="json"), "version": 3, "unit_kinds": ["stationed_agency"]}
    with pytest.raises(ValidationError, match="township-led only"):
        AssessmentScheme.model_validate(body, context={"new_version": True})


def test_rejections_before_the_period_end_only() -> None:
    case = dispatch(Case(cid("dec")), "U1", "T1", bj(12, 1, 9))
    case.add("case.rejected", bj(12, 1, 10), rejected_unit="U1", reason="x")
    case.add("case.dispatched", bj(12, 1, 11), unit="U2", township="T1")
    assert rejecting_units(case.fact(), AS_OF) == []  # dispatched after as_of: in no population
    assert rejecting_units(case.fact(), AS_OF + timedelta(days=2)) == ["U1"]
