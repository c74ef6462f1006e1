"""The people document's checks (services/dispatch/forces/people.py), positions → WGS-84 and freshness
(positions.py), and who sees a unit's forces (scope.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.dispatch.forces.people import ForcesDocument, mask_phone, problems
from services.dispatch.forces.positions import PositionIn, fresh, to_fixes
from services.dispatch.forces.scope import sees_member, sees_unit, sees_unit_phones
from shared.auth import StaffPrincipal
from shared.geo import bd09_to_wgs84, gcj02_to_wgs84
from shared.jurisdiction.model import Unit

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


def doc(**kw: object) -> ForcesDocument:
    base: dict[str, object] = {
        "county_code": "330127",
        "members": [
            {"member_id": "a1", "unit": "A", "name": "甲", "role": "leader"},
            {"member_id": "a2", "unit": "A", "name": "乙", "role": "grid_worker", "grids": ["G1"]},
            {"member_id": "b1", "unit": "B", "name": "丙"},
        ],
        "teams": [{"team_id": "t1", "unit": "A", "name": "一中队", "members": ["a1", "a2"]}],
        "shifts": [{"unit": "A", "start": "08:00", "end": "20:00", "members": ["a1", "a2"]}],
    }
    base.update(kw)
    return ForcesDocument.model_validate(base)


def test_a_valid_document_has_no_problems() -> None:
    assert problems(doc(), units={"A", "B"}, grids={"G1"}) == []


def test_each_problem_is_named() -> None:
    bad = doc(
        members=[
            {"member_id": "a1", "unit": "A", "name": "甲"},
            {"member_id": "a1", "unit": "A", "name": "甲2"},
            {"member_id": "x", "unit": "Z", "name": "某", "grids": ["G9"]},
            {"member_id": "b1", "unit": "B", "name": "丙"},
        ],
        teams=[{"team_id": "t1", "unit": "A", "name": "一中队", "members": ["a1", "b1"]}],
        shifts=[{"unit": "A", "start": "08:00", "end": "20:00", "members": ["b1"]}],
    )
    found = problems(bad, units={"A", "B"}, grids={"G1"})
    assert "member 'a1' listed twice 队员编号重复" in found
    assert "member 'x': unknown unit 'Z' 单位不存在" in found
    assert "member 'x': unknown grid 'G9' 网格不存在" in found
    assert "team 't1': 'b1' is not a member of A 非本单位队员" in found
    assert any(p.startswith("shift 0 (A ): 'b1' is not a member of A") for p in found)


def test_phones_are_masked_to_their_first_three_and_last_four_digits() -> None:
    assert mask_phone("13957001234") == "139****1234"
    assert mask_phone("1234") == "****" and mask_phone(None) is None


def test_positions_are_converted_to_wgs84_and_old_or_future_ones_left_out() -> None:
    batch = [
        PositionIn(member_id="a1", at=NOW - timedelta(minutes=1), lng=119.0452, lat=29.6021, crs="gcj02"),
        PositionIn(member_id="a1", at=NOW - timedelta(minutes=2), lng=119.0517, lat=29.6081, crs="bd09"),
        PositionIn(member_id="a2", at=NOW, lng=119.05, lat=29.6, crs="wgs84"),
        PositionIn(member_id="a2", at=NOW - timedelta(hours=25), lng=119.05, lat=29.6),  # older than the track
        PositionIn(member_id="a2", at=NOW + timedelta(minutes=10), lng=119.05, lat=29.6),  # from the future
    ]
    fixes = to_fixes(batch, now=NOW)
    assert [(f.member_id, f.at) for f in fixes] == [(p.member_id, p.at) for p in batch[:3]]
    gx, gy = gcj02_to_wgs84(119.0452, 29.6021)
    bx, by = bd09_to_wgs84(119.0517, 29.6081)
    assert (fixes[0].lng, fixes[0].lat) == (round(gx, 7), round(gy, 7))
    assert (fixes[1].lng, fixes[1].lat) == (round(bx, 7), round(by, 7))
    assert (fixes[2].lng, fixes[2].lat) == (119.05, 29.6)
    # GCJ-02 is offset by a few hundred metres here: the converted point is not the input.
    assert abs(fixes[0].lng - 119.0452) > 0.001


def test_a_position_is_fresh_for_30_minutes() -> None:
    assert fresh(NOW - timedelta(minutes=30), NOW) and not fresh(NOW - timedelta(minutes=30, seconds=1), NOW)
    assert not fresh(None, NOW)


def test_who_sees_a_units_forces() -> None:
    zfd = Unit(id="A", name="执法队", kind="enforcement_team", township_code="T1")
    pcs = Unit(id="P", name="派出所", kind="stationed_agency", department="D", covers=["T1"])

    def who(role: str, **kw: str) -> StaffPrincipal:
        return StaffPrincipal(role=role, **kw)

    assert sees_unit(who("dispatcher", township="*"), zfd, "A") and sees_unit(who("admin"), zfd, "A")
    assert sees_unit(who("township_admin", township="T1"), zfd, "A")
    assert sees_unit(who("dispatcher", township="T1"), pcs, "P")  # a stationed agency covering T1
    assert not sees_unit(who("dispatcher", township="T2"), zfd, "A")
    assert sees_unit(who("unit", township="T1", unit="A"), zfd, "A")
    assert not sees_unit(who("unit", township="T1", unit="P"), zfd, "A")
    assert not sees_unit(who("hotline", township="*"), zfd, "A")
    me = who("member", township="T1", unit="A", member="a2")
    assert not sees_unit(me, zfd, "A") and sees_member(me, zfd, "a2", "A") and not sees_member(me, zfd, "a1", "A")
    assert sees_unit_phones(who("unit", township="T1", unit="A"), "A")
    assert not sees_unit_phones(who("dispatcher", township="*"), "A")
