"""Pure rules of the approval and alarm sources in dispatch: bursts, 复核, 自动恢复, 监管时限, 整改复查, 作废."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from services.dispatch.alarms import joins, needs_review, plan_bursts, recovers
from services.dispatch.case_model import Action, Actor, Applied, CaseSnapshot, CaseState, Refused, Role
from services.dispatch.identity import case_id_for
from services.dispatch.lifecycle import apply
from services.dispatch.supervision import follow_up_id, supervise_days
from shared.events import AlarmFacts, AlarmReported, EventEnvelope, GeoPoint, incident_event_id, make_envelope
from shared.jurisdiction import Matter

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=CST)
SYSTEM = Actor(Role.SYSTEM)
DISPATCHER = Actor(Role.DISPATCHER, township="*")
MIN = timedelta(minutes=1)


def alarm(device: str, minute: int, *, kind: str = "AI-ZDJY", cleared: bool = False) -> EventEnvelope[Any]:
    alarm_id = f"{device}-{minute}"
    raised = T0 + minute * MIN
    event = AlarmReported(
        event_id=incident_event_id("alarm", alarm_id), source="alarm", source_id=alarm_id, reported_at=raised,
        received_at=raised, description="告警", category_codes={"alarm_type": kind}, category_key=kind,
        location=GeoPoint(lng=119.0, lat=29.5, original_lng=119.0, original_lat=29.5), reporter_kind="sensor",
        alarm=AlarmFacts(alarm_id=alarm_id, device_id=device, device_kind="video", alarm_type=kind, raised_at=raised,
                         cleared_at=raised + MIN if cleared else None, level="warning"),
    )
    return make_envelope(event_type="alarm.reported", data=event, source="/intake/alarm", correlation_id="c",
                         subject=str(event.event_id), time=raised, event_id=event.event_id)


def test_joins_within_the_window_either_side() -> None:
    assert joins(T0, T0 + 30 * MIN, 30 * MIN) and joins(T0, T0 - 30 * MIN, 30 * MIN)
    assert not joins(T0, T0 + 31 * MIN, 30 * MIN)


def test_a_burst_opens_one_case_and_the_rest_join_it_sliding_the_window() -> None:
    window = {"AI-ZDJY": 30 * MIN}
    # one alarm every 20 minutes for 100 minutes: each within 30 min of the last → one case
    burst = [alarm("CAM-1", m) for m in range(0, 101, 20)]
    plan = plan_bursts(burst, {}, window)
    assert [e.data.source_id for e in plan.new] == ["CAM-1-0"]
    assert len(plan.joined[case_id_for(burst[0].data.event_id)]) == 5
    # another device, another type, or a 31-minute gap: new cases
    others = [alarm("CAM-2", 0), alarm("CAM-1", 0, kind="AI-X"), alarm("CAM-3", 0), alarm("CAM-3", 31)]
    plan = plan_bursts(others, {}, {"AI-ZDJY": 30 * MIN, "AI-X": 30 * MIN})
    assert len(plan.new) == 4 and not plan.joined


def test_an_open_case_from_before_takes_the_burst() -> None:
    open_case = uuid.uuid4()
    plan = plan_bursts([alarm("CAM-1", 10), alarm("CAM-1", 20)], {("CAM-1", "AI-ZDJY"): [(open_case, T0)]},
                       {"AI-ZDJY": 30 * MIN})
    assert not plan.new and len(plan.joined[open_case]) == 2


def test_an_alarm_already_cleared_opens_a_case_nothing_joins() -> None:
    plan = plan_bursts([alarm("CAM-1", 0, cleared=True), alarm("CAM-1", 1)], {}, {"AI-ZDJY": 30 * MIN})
    assert len(plan.new) == 2 and not plan.joined


def test_review_below_the_threshold_only() -> None:
    assert needs_review(0.59, 0.6) and not needs_review(0.6, 0.6) and not needs_review(None, 0.6)


def alarm_case(state: CaseState, **changes: Any) -> CaseSnapshot:
    return CaseSnapshot(id="A-1", township="330127102", source="alarm", reported_at=T0, state=state,
                        last_raised_at=T0 + 10 * MIN, **changes)


def test_recovery_only_before_acceptance_and_for_the_latest_occurrence() -> None:
    assert recovers(alarm_case(CaseState.DISPATCHED), T0 + 10 * MIN)
    assert recovers(alarm_case(CaseState.TRIAGE), T0 + 10 * MIN)
    assert not recovers(alarm_case(CaseState.ACCEPTED), T0 + 10 * MIN)  # accepted: the unit handles it
    assert not recovers(alarm_case(CaseState.DISPATCHED), T0)  # an earlier alarm of a burst still going


def test_occurrences_count_and_auto_recovery_closes_with_its_reason() -> None:
    case = alarm_case(CaseState.DISPATCHED)
    body = {"expected_version": 1, "count": 19, "last_raised_at": T0 + 30 * MIN}
    added = apply(case, Action.ADD_OCCURRENCE, body, SYSTEM, T0 + 31 * MIN)
    assert isinstance(added, Applied) and added.new_case.occurrences == 1 + 19
    assert added.new_case.last_raised_at == T0 + 30 * MIN and added.new_case.state is CaseState.DISPATCHED
    recovered = apply(added.new_case, Action.AUTO_RECOVER, {"expected_version": 2, "cleared_at": T0 + 40 * MIN},
                      SYSTEM, T0 + 41 * MIN)
    assert isinstance(recovered, Applied) and recovered.event_type == "case.auto_recovered"
    assert recovered.new_case.state is CaseState.CLOSED and recovered.new_case.close_reason == "自动恢复"


def test_supervise_days_approval_then_matter_then_default() -> None:
    matter = Matter(code="JG001", name="食品经营", department="d", township_function="enforcement",
                    deadlines={"normal": 80, "urgent": 16, "critical": 4}, time_basis="working",
                    supervise_within_days=15)
    assert supervise_days(7, matter) == 7
    assert supervise_days(None, matter) == 15
    assert supervise_days(None, None) == 10


def inspection_task(state: CaseState = CaseState.ACCEPTED) -> CaseSnapshot:
    return CaseSnapshot(id=str(uuid.UUID(int=7)), township="330127102", source="approval", reported_at=T0,
                        state=state, kind="inspection", primary_unit="pz-scjgs-qingxi")


def test_rectify_links_a_deterministic_follow_up_and_case_opened_needs_its_number() -> None:
    unit = Actor(Role.UNIT, unit="pz-scjgs-qingxi")
    task = inspection_task()
    rectify = apply(task, Action.RECORD_INSPECTION, {"expected_version": 1, "result": "rectify", "note": "未改造"},
                    unit, T0 + MIN)
    assert isinstance(rectify, Applied) and rectify.new_case.state is CaseState.CLOSED
    assert rectify.new_case.follow_up_case == str(follow_up_id(task.id)) == str(follow_up_id(task.id))
    missing = apply(task, Action.RECORD_INSPECTION, {"expected_version": 1, "result": "case_opened", "note": "x"},
                    unit, T0 + MIN)
    assert isinstance(missing, Refused) and missing.kind == "invalid"
    incident = task.model_copy(update={"kind": "incident", "source": "12345"})
    wrong = apply(incident, Action.RECORD_INSPECTION, {"expected_version": 1, "result": "compliant", "note": "x"},
                  unit, T0 + MIN)
    assert isinstance(wrong, Refused) and wrong.kind == "not_allowed"


def test_invalid_marking_keeps_the_reason_and_false_alarm_is_for_alarms() -> None:
    hotline = CaseSnapshot(id="C-1", township="330127102", source="12345", reported_at=T0, state=CaseState.TRIAGE)
    done = apply(hotline, Action.MARK_INVALID, {"expected_version": 1, "reason": "out_of_scope"}, DISPATCHER,
                 T0 + MIN)
    assert isinstance(done, Applied) and done.new_case.invalid_reason == "out_of_scope"
    assert done.new_case.state is CaseState.CLOSED and done.event_type == "case.invalidated"
    no = apply(hotline, Action.MARK_INVALID, {"expected_version": 1, "reason": "false_alarm"}, DISPATCHER, T0 + MIN)
    assert isinstance(no, Refused) and no.kind == "invalid"
    flagged = apply(alarm_case(CaseState.DISPATCHED), Action.MARK_INVALID,
                    {"expected_version": 1, "reason": "false_alarm"}, DISPATCHER, T0 + 20 * MIN)
    assert isinstance(flagged, Applied) and flagged.new_case.false_alarm is True
