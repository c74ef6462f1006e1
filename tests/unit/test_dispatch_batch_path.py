"""The batch path's shortcuts give exactly what the plain calls give (pure, no database).

批量路径的各项加速与直接调用结果完全相同（纯函数，无数据库）：路由记忆化与向量化定位、
快速 uuid5、只比较变化字段的快照差异、暂存时复用的快照 JSON、预先暂存再改为并案。
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.dispatch.action_bodies import DispatchBody, EscalateBody, RejectBody
from services.dispatch.case_model import Action, Actor, Applied, CaseSnapshot, Refused, Role
from services.dispatch.duplicates import DuplicateMatch
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.identity import CASE_NAMESPACE, case_id_for, event_id_for, uuid5_of
from services.dispatch.lifecycle import _diff, apply
from services.dispatch.new_cases import prime_points, route_batch, route_one, stage_new_case
from services.dispatch.placement import locate_event
from services.dispatch.routing import route
from services.dispatch.routing_memo import RoutingMemo
from services.dispatch.store import CASE_COLUMNS, TRANSITION_COLUMNS
from shared.calendar import load_calendar
from shared.events import IncidentReported, decode_envelope, make_envelope
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot

ROOT = Path(__file__).resolve().parents[2]
DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
AREA = (119.0, 29.54, 119.1, 29.62)
DESCRIPTIONS = ("压测事件", "燃气泄漏 噪音", "占道经营", "垃圾满溢")


@pytest.fixture(scope="module")
def loaded() -> LoadedJurisdiction:
    snapshot = JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=3, rules_version=4)
    return LoadedJurisdiction(snapshot, load_calendar(county=snapshot.county_code))


def reports(n: int, seed: int = 3) -> list[IncidentReported]:
    """Reports all over the demo county: every source, mapped and unmapped categories, codes, addresses."""
    rng = random.Random(seed)
    mappings = DEMO["source_mappings"]
    out = []
    for i in range(n):
        source = rng.choice(["12345", "cityops", "gridworker"])
        key = rng.choice([*mappings[source], "UNMAPPED"])
        lng = AREA[0] + rng.random() * (AREA[2] - AREA[0])
        lat = AREA[1] + rng.random() * (AREA[3] - AREA[1])
        body: dict[str, Any] = {
            "event_id": uuid.UUID(int=rng.getrandbits(128)),
            "source": source,
            "source_id": f"T{i:05d}",
            "reported_at": NOW - timedelta(minutes=rng.randint(0, 3000)),
            "received_at": NOW,
            "description": rng.choice(DESCRIPTIONS),
            "category_codes": {"code": key},
            "category_key": key,
            "location": {"lng": lng, "lat": lat, "original_crs": "wgs84", "original_lng": lng, "original_lat": lat},
            "urgency": rng.choice(["normal", "urgent", "critical"]),
            "reporter_kind": "grid_worker" if source == "gridworker" else "caller",
            "appeal_type": rng.choice(["complaint", "praise"]) if source == "12345" else None,
            "self_handled": source == "gridworker" and rng.random() < 0.2,
            "worker_id": "GW1" if source == "gridworker" else None,
        }
        if rng.random() < 0.2:
            body["grid_code"] = rng.choice(["330127001001001", "330127101001003", "330127102", "99999"])
        if rng.random() < 0.1:
            body["location"] = None
            body["address"] = rng.choice(["白沙街道", "青溪镇", "无名之地"])
        out.append(IncidentReported.model_validate(body))
    return out


def test_uuid5_is_the_standard_one() -> None:
    for i in range(200):
        name = f"{i}:case.dispatched" if i % 2 else str(uuid.uuid4())
        namespace = uuid.uuid4() if i % 3 else CASE_NAMESPACE
        assert uuid5_of(namespace.bytes, name) == uuid.uuid5(namespace, name)
    incident = uuid.uuid4()
    assert case_id_for(incident) == uuid.uuid5(CASE_NAMESPACE, str(incident))
    case = case_id_for(incident)
    assert event_id_for(case, 2, "case.dispatched") == uuid.uuid5(case, "2:case.dispatched")


def test_memoised_and_batched_routing_decides_as_one_by_one(loaded: LoadedJurisdiction) -> None:
    snapshot, calendar = loaded.snapshot, loaded.calendar
    events = reports(400)
    memo = RoutingMemo(snapshot, calendar)
    memo.prime_points([(e.location.lng, e.location.lat) for e in events if e.location is not None])
    for now in (NOW, NOW + timedelta(hours=7)):  # the memo's deadline table keyed by the moment too
        for e in events:
            plain = route(e, snapshot, now=now, calendar=calendar)
            assert route(e, snapshot, now=now, calendar=calendar, memo=memo) == plain
            assert plain.to_dict() == route(e, snapshot, now=now, calendar=calendar, memo=memo).to_dict()
            assert locate_event(e, snapshot, memo) == locate_event(e, snapshot)


def test_a_memo_of_another_snapshot_is_not_used(loaded: LoadedJurisdiction) -> None:
    other = JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=9, rules_version=9)
    memo = RoutingMemo(other, loaded.calendar)
    for e in reports(30):
        decision = route(e, loaded.snapshot, now=NOW, calendar=loaded.calendar, memo=memo)
        assert decision == route(e, loaded.snapshot, now=NOW, calendar=loaded.calendar)
        assert decision.jurisdiction_version == 3


def test_memo_tables_are_bounded(loaded: LoadedJurisdiction) -> None:
    memo = RoutingMemo(loaded.snapshot, loaded.calendar)
    for minute in range(memo.LIMIT + 10):
        memo.fmt(NOW + timedelta(minutes=minute))
    assert len(memo._fmt) <= memo.LIMIT
    points = [(119.0 + i * 1e-6, 29.6) for i in range(memo.POINTS_LIMIT // 2 + 1)]
    memo.prime_points(points)
    memo.prime_points([(lng + 0.01, lat) for lng, lat in points])
    assert len(memo._points) <= memo.POINTS_LIMIT
    assert memo.locate(*points[0]) == loaded.snapshot.locate(*points[0])  # dropped from the table: located again


def test_route_batch_is_route_one_per_report(loaded: LoadedJurisdiction) -> None:
    batch = [(e, f"c{i}") for i, e in enumerate(reports(120, seed=5))]
    prime_points(batch, loaded)
    routed = route_batch(batch, loaded)
    for (e, correlation_id), r in zip(batch, routed, strict=True):
        one = route_one(e, correlation_id, LoadedJurisdiction(loaded.snapshot, loaded.calendar))
        assert r.decision == one.decision
        assert r.record == one.record
        assert r.report == one.report


def _applied(result: Applied | Refused) -> CaseSnapshot:
    assert isinstance(result, Applied), result
    return result.new_case


def _snapshots() -> list[tuple[CaseSnapshot, CaseSnapshot]]:
    base = CaseSnapshot(id="c1", township="330127001", source="12345", reported_at=NOW, matter="SR001")
    system = Actor(Role.SYSTEM, id="system:dispatch")
    body = DispatchBody(expected_version=1, unit="u1", deadline=NOW + timedelta(days=2))
    one = _applied(apply(base, Action.DISPATCH, body, system, NOW + timedelta(minutes=1)))
    unit = Actor(Role.UNIT, unit="u1", township="330127001")
    two = _applied(
        apply(
            one, Action.REJECT, RejectBody(expected_version=2, reason="不属于本单位"), unit, NOW + timedelta(minutes=2)
        )
    )
    admin = Actor(Role.ADMIN, township="*")
    escalate = EscalateBody(expected_version=3, department="dept-cgj", reason="吹哨")
    three = _applied(apply(two, Action.ESCALATE, escalate, admin, NOW + timedelta(minutes=3)))
    # The same instant in another offset: equal as datetimes, different as JSON. 同一时刻、不同时区。
    other_tz = base.model_copy(update={"reported_at": NOW.astimezone(timezone(timedelta(hours=8)))})
    return [(base, one), (one, two), (two, three), (base, three), (base, base), (base, other_tz), (three, base)]


@pytest.mark.parametrize("pair", range(7))
def test_snapshot_diff_is_the_json_difference(pair: int) -> None:
    old, new = _snapshots()[pair]
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    expected = {key: value for key, value in after.items() if before.get(key) != value}
    assert _diff(old, new) == expected
    assert list(_diff(old, new)) == list(expected)  # field order


def test_staged_rows_are_those_of_the_staged_record(loaded: LoadedJurisdiction) -> None:
    batch = [(e, "c") for e in reports(150, seed=11)]
    prime_points(batch, loaded)
    for routed in route_batch(batch, loaded):
        pristine = routed.record
        staged = stage_new_case(routed, None)
        assert routed.record is pristine and routed.record.snapshot.version == 1  # the routed record untouched
        row = staged.record.to_row()
        assert staged.snapshot_json == staged.record.snapshot.model_dump(mode="json")
        assert staged.case_values == CASE_COLUMNS.values(row)
        assert [
            orjson.loads(v) if i in CASE_COLUMNS.json and v is not None else v for i, v in enumerate(staged.case_values)
        ] == [row[name] for name in CASE_COLUMNS.names]
        assert staged.transition_values == [TRANSITION_COLUMNS.values(r) for r in staged.pending.rows]
        assert staged.outcome == routed.decision.outcome


def test_a_report_staged_as_new_can_be_staged_again_as_merged(loaded: LoadedJurisdiction) -> None:
    batch = [(e, "c") for e in reports(40, seed=13) if not e.self_handled]
    prime_points(batch, loaded)
    routed = route_batch(batch, loaded)[0]
    first = stage_new_case(routed, None)
    duplicate = DuplicateMatch(str(uuid.uuid4()), "nearby", 12.0, "与案件并案")
    merged = stage_new_case(routed, duplicate)
    assert merged.outcome == "merged" and merged.record.merged_into == uuid.UUID(duplicate.case_id)
    assert [row["event_type"] for row in merged.pending.rows] == ["case.merged"]
    assert first.record.merged_into is None and first.pending.rows[0]["event_type"] == "case.reported"
    assert merged.snapshot_json == merged.record.snapshot.model_dump(mode="json")
    assert merged.case_values == CASE_COLUMNS.values(merged.record.to_row())


def test_cached_envelope_classes_round_trip(loaded: LoadedJurisdiction) -> None:
    for e in reports(5):
        env = make_envelope(
            event_type="incident.reported", data=e, source="/intake/x", correlation_id="c", subject=None, time=NOW
        )
        back = decode_envelope(env.to_bytes())
        assert back == env and type(back) is type(env)
