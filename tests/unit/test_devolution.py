"""Dated devolution (下放清单动态调整): the bundle model, validation, canonical form, changes, routing by date.

带日期的下放条目：模型、校验、规范化、变更（历史不改写）与按上报日期派遣（下放、委托、协助）。
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from services.dispatch.routing import route
from shared.calendar import WorkingCalendar, load_calendar
from shared.jurisdiction import (
    JurisdictionBundle,
    JurisdictionSnapshot,
    bundle_digest,
    canonical_bundle,
    validate_bundle,
)
from shared.jurisdiction.devolution import DevolutionChange, DevolutionChangeItem, apply_change
from tests.unit.test_routing import FENGLIN, G_FENGLIN, G_QINGXI, K_WJ002, QINGXI, centre, event

ROOT = Path(__file__).resolve().parents[2]
DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
CST = timezone(timedelta(hours=8))
EFFECTIVE = date(2026, 7, 1)
#: 2026-06-30 23:30 and 2026-07-01 00:30 Shanghai: the day before and the day of the entry. 生效日前后。
BEFORE = datetime(2026, 6, 30, 23, 30, tzinfo=CST)
AFTER = datetime(2026, 7, 1, 0, 30, tzinfo=CST)
DOC = "青政发〔2026〕12号"


def demo(**extra: Any) -> dict[str, Any]:
    """The demo county without its dated history (the tests below write their own). 不含带日期记录的示范县。"""
    data = copy.deepcopy(DEMO)
    data.pop("devolution_entries", None)
    data.update(extra)
    return data


def snapshot(data: dict[str, Any]) -> JurisdictionSnapshot:
    return JurisdictionSnapshot(JurisdictionBundle.model_validate(data), version=1, rules_version=1)


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return load_calendar(county="330127")


def fenglin_wj002(mode: str, **dates: Any) -> dict[str, Any]:
    """违法占用耕地建房 (WJ002, 自然资源局) in 枫林镇: not devolved in the demo county's lists."""
    return {"township": FENGLIN, "matter": "WJ002", "mode": mode, "document": DOC, **dates}


def at(snap: JurisdictionSnapshot, cal: WorkingCalendar, reported: datetime, grid: str = G_FENGLIN) -> Any:
    ev = event(key=K_WJ002, point=centre(snap, grid)).model_copy(
        update={"reported_at": reported, "received_at": reported + timedelta(minutes=1)}
    )
    return route(ev, snap, now=reported + timedelta(minutes=1), calendar=cal)


# --------------------------------------------------------------------------- the model 模型


def test_undated_lists_are_devolved_entries_from_the_start_and_keep_the_digest() -> None:
    bundle = JurisdictionBundle.model_validate(demo())
    snap = JurisdictionSnapshot(bundle, version=1, rules_version=1)
    entry = snap.devolution_at(QINGXI, "WJ002", datetime(2000, 1, 1, tzinfo=CST))
    assert entry is not None and entry.mode == "devolved" and entry.effective_from is None and entry.document is None
    assert snap.devolution_at(FENGLIN, "WJ002", AFTER) is None
    # The canonical form of a bundle without the new keys is what it was: absent keys, not nulls.
    assert bundle_digest(bundle) == bundle_digest(JurisdictionBundle.model_validate(demo(devolution_entries=[])))
    canonical = canonical_bundle(bundle)
    assert "devolution_entries" not in canonical and "effective_date" not in canonical


def test_undated_lists_apply_from_the_bundles_date() -> None:
    snap = snapshot(demo(effective_date="2026-07-01"))
    assert snap.devolution_at(QINGXI, "WJ002", BEFORE) is None
    entry = snap.devolution_at(QINGXI, "WJ002", AFTER)
    assert entry is not None and entry.effective_from == EFFECTIVE


def test_entry_in_force_on_shanghai_days_from_inclusive_to_exclusive() -> None:
    snap = snapshot(
        demo(devolution_entries=[fenglin_wj002("devolved", effective_from="2026-07-01", effective_to="2026-08-01")])
    )
    assert snap.devolution_at(FENGLIN, "WJ002", BEFORE) is None
    assert snap.devolution_at(FENGLIN, "WJ002", AFTER) is not None
    # 2026-07-31 23:59 Shanghai is 15:59 UTC: still in force; 2026-08-01 00:00 Shanghai is not.
    assert snap.devolution_at(FENGLIN, "WJ002", datetime(2026, 7, 31, 15, 59, tzinfo=UTC)) is not None
    assert snap.devolution_at(FENGLIN, "WJ002", datetime(2026, 7, 31, 16, 0, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("entries", "extra", "fragment"),
    [
        (
            [fenglin_wj002("devolved", effective_from="2026-07-01", effective_to="2026-07-01")],
            {},
            "after effective_from",
        ),
        ([{**fenglin_wj002("devolved"), "township": "330127999"}], {}, "unknown township"),
        ([{**fenglin_wj002("devolved"), "matter": "XX999"}], {}, "unknown matter"),
        (
            [
                fenglin_wj002("devolved", effective_from="2026-07-01"),
                fenglin_wj002("assist", effective_from="2026-09-01"),
            ],
            {},
            "overlaps",
        ),
        # 青溪镇 has WJ002 in its undated list (from the start): a dated entry overlaps it.
        ([{**fenglin_wj002("entrusted", effective_from="2026-07-01"), "township": QINGXI}], {}, "overlaps"),
        ([{**fenglin_wj002("devolved"), "document": "  "}], {}, "document"),
    ],
)
def test_invalid_entries_are_listed(entries: list[dict[str, Any]], extra: dict[str, Any], fragment: str) -> None:
    problems = validate_bundle(demo(devolution_entries=entries, **extra))
    assert any(fragment in p.message for p in problems), problems


def test_back_to_back_entries_are_valid_and_canonical_order_does_not_matter() -> None:
    a = fenglin_wj002("devolved", effective_from="2026-07-01", effective_to="2026-09-01")
    b = fenglin_wj002("assist", effective_from="2026-09-01")
    assert validate_bundle(demo(devolution_entries=[a, b])) == []
    one = JurisdictionBundle.model_validate(demo(devolution_entries=[a, b]))
    two = JurisdictionBundle.model_validate(demo(devolution_entries=[b, a]))
    assert bundle_digest(one) == bundle_digest(two) != bundle_digest(JurisdictionBundle.model_validate(demo()))


# --------------------------------------------------------------------------- changes 变更


def change(*items: tuple[str, str, str, str], document: str = DOC) -> DevolutionChange:
    return DevolutionChange(
        document=document,
        items=[DevolutionChangeItem(township=t, matter=m, mode=mode, effective_from=d) for t, m, mode, d in items],  # type: ignore[arg-type]
    )


def test_a_change_closes_the_entry_in_force_and_never_rewrites_the_past() -> None:
    bundle = JurisdictionBundle.model_validate(demo())
    before = JurisdictionSnapshot(bundle, version=1, rules_version=1)
    updated, applied = apply_change(
        bundle,
        change((QINGXI, "WJ002", "none", "2026-07-01"), (FENGLIN, "WJ002", "entrusted", "2026-07-01")),
        recorded_on=date(2026, 6, 20),
    )
    assert applied.problems == ()
    assert validate_bundle(updated) == []
    after = JurisdictionSnapshot(updated, version=2, rules_version=2)
    # Every day before 2026-07-01: the same entry mode for every pair as before the change.
    for snap_day in (datetime(2020, 1, 1, tzinfo=CST), BEFORE):
        for township in (QINGXI, FENGLIN):
            for matter in ("WJ002", "SR001", "WJ004"):
                old, new = (
                    before.devolution_at(township, matter, snap_day),
                    after.devolution_at(township, matter, snap_day),
                )
                assert (old.mode if old else None) == (new.mode if new else None)
    assert after.devolution_at(QINGXI, "WJ002", AFTER) is None  # returned 收回
    entrusted = after.devolution_at(FENGLIN, "WJ002", AFTER)
    assert entrusted is not None and entrusted.mode == "entrusted" and entrusted.document == DOC
    # The returned undated entry moved into the dated list with its old start and the return day.
    assert "WJ002" not in updated.devolution[QINGXI]
    closed = [e for e in updated.devolution_entries if e.township == QINGXI]
    assert [(e.effective_from, e.effective_to, e.mode) for e in closed] == [(None, EFFECTIVE, "devolved")]
    assert [(d["township"], d["before"], d["after"]) for d in applied.diff] == [
        (QINGXI, "devolved", "none"),
        (FENGLIN, "none", "entrusted"),
    ]


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        (((FENGLIN, "WJ002", "devolved", "2026-06-20"),), "history is never rewritten"),
        (((FENGLIN, "WJ002", "none", "2026-07-01"),), "nothing to return"),
        (((QINGXI, "WJ002", "devolved", "2026-07-01"),), "already devolved"),
        (((FENGLIN, "WJ002", "devolved", "2026-07-01"), (FENGLIN, "WJ002", "assist", "2026-08-01")), "twice"),
    ],
)
def test_changes_that_are_refused(items: tuple[tuple[str, str, str, str], ...], fragment: str) -> None:
    _, applied = apply_change(JurisdictionBundle.model_validate(demo()), change(*items), recorded_on=date(2026, 6, 20))
    assert any(fragment in p.message for p in applied.problems), applied.problems


def test_a_change_cannot_start_before_a_later_recorded_entry() -> None:
    bundle = JurisdictionBundle.model_validate(
        demo(devolution_entries=[fenglin_wj002("devolved", effective_from="2026-09-01")])
    )
    _, applied = apply_change(bundle, change((FENGLIN, "WJ002", "assist", "2026-08-01")), recorded_on=date(2026, 6, 1))
    assert any("already starts on 2026-09-01" in p.message for p in applied.problems)


# --------------------------------------------------------------------------- routing across the date 跨生效日派遣


def test_devolved_from_a_date(cal: WorkingCalendar) -> None:
    snap = snapshot(demo(devolution_entries=[fenglin_wj002("devolved", effective_from="2026-07-01")]))
    before, after = at(snap, cal, BEFORE), at(snap, cal, AFTER)
    assert (before.unit, before.decided_by, before.devolved) == ("pz-zrzys-qingxi", "stationed_agency", False)
    assert before.devolution_entry is None and "devolution_entry" not in before.to_dict()
    assert (after.unit, after.decided_by, after.devolved) == ("330127102-zfd", "devolved", True)
    assert after.devolution_entry == {
        "township": FENGLIN,
        "matter": "WJ002",
        "mode": "devolved",
        "effective_from": "2026-07-01",
        "effective_to": None,
        "document": DOC,
    }
    assert f"依据{DOC}，自 2026-07-01 起下放" in after.explanation_zh
    unit_step = next(s for s in after.explanation["steps"] if s["step"] == "unit")
    assert unit_step["devolution_entry"]["document"] == DOC
    assert after.enforcement_subject is None


def test_entrusted_routes_like_devolved_and_names_the_department(cal: WorkingCalendar) -> None:
    snap = snapshot(demo(devolution_entries=[fenglin_wj002("entrusted", effective_from="2026-07-01")]))
    before, after = at(snap, cal, BEFORE), at(snap, cal, AFTER)
    assert before.unit == "pz-zrzys-qingxi" and before.enforcement_subject is None
    assert (after.unit, after.decided_by, after.devolved) == ("330127102-zfd", "entrusted", True)
    assert after.enforcement_subject == "dept-zrzyj"  # 自然资源局, WJ002's holding department
    assert after.to_dict()["enforcement_subject"] == "dept-zrzyj"
    assert "执法主体：" in after.explanation_zh and DOC in after.explanation_zh


def test_assist_routes_to_the_agency_with_the_township_unit_as_cohandler(cal: WorkingCalendar) -> None:
    # 青溪镇's undated WJ002 entry is returned on 2026-07-01 and becomes 协助 from that day.
    bundle, applied = apply_change(
        JurisdictionBundle.model_validate(demo()),
        change((QINGXI, "WJ002", "assist", "2026-07-01")),
        recorded_on=date(2026, 6, 1),
    )
    assert applied.problems == ()
    snap = JurisdictionSnapshot(bundle, version=2, rules_version=2)
    before, after = at(snap, cal, BEFORE, G_QINGXI), at(snap, cal, AFTER, G_QINGXI)
    assert (before.unit, before.decided_by, before.cohandlers) == ("330127101-zfd", "devolved", ())
    # The closed undated entry carries its return day now: recorded, as a dated entry.
    assert before.devolution_entry is not None and before.devolution_entry["effective_to"] == "2026-07-01"
    assert (after.unit, after.decided_by, after.devolved) == ("pz-zrzys-qingxi", "stationed_agency", False)
    assert after.cohandlers == ("330127101-zfd",)
    assert after.devolution_entry is not None and after.devolution_entry["mode"] == "assist"
    assert "协助" in after.explanation_zh and DOC in after.explanation_zh


def test_returned_matter_goes_back_to_the_agency(cal: WorkingCalendar) -> None:
    bundle, _ = apply_change(
        JurisdictionBundle.model_validate(demo()), change((QINGXI, "WJ002", "none", "2026-07-01")), recorded_on=None
    )
    snap = JurisdictionSnapshot(bundle, version=2, rules_version=2)
    assert at(snap, cal, BEFORE, G_QINGXI).unit == "330127101-zfd"
    returned = at(snap, cal, AFTER, G_QINGXI)
    assert (returned.unit, returned.decided_by, returned.devolution_entry) == (
        "pz-zrzys-qingxi",
        "stationed_agency",
        None,
    )


def test_routing_uses_the_report_time_not_the_processing_time(cal: WorkingCalendar) -> None:
    snap = snapshot(demo(devolution_entries=[fenglin_wj002("devolved", effective_from="2026-07-01")]))
    ev = event(key=K_WJ002, point=centre(snap, G_FENGLIN)).model_copy(
        update={"reported_at": BEFORE, "received_at": AFTER + timedelta(days=3)}
    )
    late = route(ev, snap, now=AFTER + timedelta(days=3), calendar=cal)
    assert late.unit == "pz-zrzys-qingxi"  # reported before the day: the old list, though processed after it


def test_bundles_without_dated_entries_explain_as_before(cal: WorkingCalendar) -> None:
    snap = snapshot(demo())
    decision = at(snap, cal, AFTER, G_QINGXI)
    assert decision.unit == "330127101-zfd" and decision.devolution_entry is None
    assert "依据" not in decision.explanation_zh
    assert set(decision.to_dict()) >= {"devolved"} and "devolution_entry" not in decision.to_dict()


# --------------------------------------------------------------------------- the demo county's history 示范县历史


def test_the_demo_countys_dated_history(cal: WorkingCalendar) -> None:
    snap = snapshot(copy.deepcopy(DEMO))
    may, october = datetime(2026, 4, 30, 12, tzinfo=CST), datetime(2026, 10, 8, 10, tzinfo=CST)
    # 小作坊安全隐患 (AQ005) devolved to 青溪镇 in 2024 and returned on 2026-09-01 (收回).
    assert snap.devolution_at(QINGXI, "AQ005", datetime(2026, 8, 31, 12, tzinfo=CST)) is not None
    assert snap.devolution_at(QINGXI, "AQ005", october) is None
    # 销售过期食品 (SC004) entrusted to 白沙街道 from 2026-05-01; 价格欺诈 (SC003) devolved to 枫林镇 from 2026-03-01.
    assert snap.devolution_at("330127001", "SC004", may) is None
    entry = snap.devolution_at("330127001", "SC004", october)
    assert entry is not None and entry.mode == "entrusted" and entry.document == "青市监〔2026〕12号"
    assert snap.devolution_at(FENGLIN, "SC003", october) is not None
    # 虚假宣传 (SC005) to 枫林镇 is decided for 2027. 明年生效。
    assert snap.devolution_at(FENGLIN, "SC005", october) is None
    assert snap.devolution_at(FENGLIN, "SC005", datetime(2027, 1, 1, 9, tzinfo=CST)) is not None
