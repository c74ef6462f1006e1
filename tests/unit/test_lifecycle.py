"""Tests of the case lifecycle state machine (案件闭环处置状态机).

The heart is :data:`EXPECTED`, written out by hand from the issue and
lifecycle.md (deliberately *not* derived from ``lifecycle.TRANSITIONS``): every
(state, action, role) triple it lists must succeed with the given target state
and event; every other triple must be refused — ``forbidden`` when the role (or
a unit's scope) does not allow it, ``not_allowed`` when the state does not.
"""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

import pytest

from services.dispatch.action_bodies import AcceptBody, RejectBody
from services.dispatch.case_model import (
    Action,
    Actor,
    Applied,
    CaseSnapshot,
    CaseState,
    Escalation,
    ExtensionRequest,
    RefusalKind,
    Refused,
    Rejection,
    Role,
    Satisfaction,
    TimelineEntry,
    TransitionResult,
)
from services.dispatch.lifecycle import (
    TRANSITIONS,
    after_rejection,
    allowed_actions,
    apply,
    can_see,
    may_act,
    replay,
    reported_entry,
)

S, A, R = CaseState, Action, Role

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=CST)  # reported (上报)
NOW = T0 + timedelta(days=1)
DEADLINE = T0 + timedelta(days=7)

TOWNSHIP = "330127101"
PRIMARY = "U1"  # the primary unit of the fixture cases
OTHER_UNIT = "U9"  # a fresh unit for dispatch / assign / reassign
COHANDLER = "U3"
DEPARTMENT = "DEPT-ZJ"  # county department called by 吹哨

#: The member of PRIMARY the fixture cases are assigned to (派单到人). 案件派给的队员。
MEMBER_ID = "M1"
ACTORS: dict[Role, Actor] = {
    R.UNIT: Actor(R.UNIT, unit=PRIMARY, township=TOWNSHIP),
    R.DISPATCHER: Actor(R.DISPATCHER, township=TOWNSHIP),
    R.TOWNSHIP_ADMIN: Actor(R.TOWNSHIP_ADMIN, township=TOWNSHIP),
    R.HOTLINE: Actor(R.HOTLINE, township="*"),
    R.ADMIN: Actor(R.ADMIN, township="*"),
    R.SYSTEM: Actor(R.SYSTEM),
    R.MEMBER: Actor(R.MEMBER, unit=PRIMARY, township=TOWNSHIP, id=MEMBER_ID),
}
DEPARTMENT_ACTOR = Actor(R.UNIT, unit=DEPARTMENT)


# --------------------------------------------------------------------------- the expectation table


class Expect(NamedTuple):
    states: frozenset[CaseState]
    roles: frozenset[Role]
    target: CaseState | None  # None = state unchanged
    event: str


def _s(*states: CaseState) -> frozenset[CaseState]:
    return frozenset(states)


def _r(*roles: Role) -> frozenset[Role]:
    return frozenset(roles)


ALL = frozenset(CaseState)
OPEN = ALL - {S.CLOSED}
DISPATCHERS = _r(R.DISPATCHER, R.ADMIN)  # admin may do anything a dispatcher may

#: action → (allowed from-states, allowed roles, target state, event). Everything else is refused.
# fmt: off
EXPECTED: dict[Action, Expect] = {
    A.DISPATCH: Expect(_s(S.REPORTED, S.REJECTED), _r(R.SYSTEM, R.DISPATCHER, R.ADMIN), S.DISPATCHED,
                       "case.dispatched"),
    A.TRIAGE: Expect(_s(S.REPORTED, S.REJECTED), _r(R.SYSTEM, R.DISPATCHER, R.ADMIN), S.TRIAGE,
                     "case.triage_required"),
    A.ASSIGN: Expect(_s(S.TRIAGE, S.REPORTED), DISPATCHERS, S.DISPATCHED, "case.assigned"),
    A.ACCEPT: Expect(_s(S.DISPATCHED), _r(R.UNIT), S.ACCEPTED, "case.accepted"),
    A.REJECT: Expect(_s(S.DISPATCHED, S.ACCEPTED), _r(R.UNIT), S.REJECTED, "case.rejected"),
    A.REQUEST_EXTENSION: Expect(_s(S.ACCEPTED), _r(R.UNIT, R.MEMBER), None, "case.extension_requested"),
    A.DECIDE_EXTENSION: Expect(_s(S.ACCEPTED), DISPATCHERS, None, "case.extended"),  # approved
    A.RULE_REJECTION: Expect(ALL - {S.REPORTED}, DISPATCHERS, None, "case.rejection_ruled"),
    A.REASSIGN: Expect(_s(S.DISPATCHED, S.ACCEPTED, S.REJECTED, S.REOPENED, S.TRIAGE), DISPATCHERS,
                       S.DISPATCHED, "case.reassigned"),
    A.RESOLVE: Expect(_s(S.ACCEPTED, S.REOPENED), _r(R.UNIT, R.MEMBER), S.RESOLVED, "case.resolved"),
    A.VERIFY: Expect(_s(S.RESOLVED), DISPATCHERS, S.CLOSED, "case.verified"),  # passed
    A.CLOSE: Expect(_s(S.RESOLVED), DISPATCHERS, S.CLOSED, "case.closed"),
    A.CALLBACK: Expect(_s(S.CLOSED), _r(R.HOTLINE, R.DISPATCHER, R.ADMIN), None, "case.callback_recorded"),
    A.REOPEN: Expect(_s(S.CLOSED), DISPATCHERS, S.REOPENED, "case.reopened"),
    A.SUPERVISE: Expect(OPEN, DISPATCHERS, None, "case.supervised"),
    A.ESCALATE: Expect(OPEN, _r(R.TOWNSHIP_ADMIN, R.ADMIN), None, "case.escalated"),
    A.REPORT_IN: Expect(ALL, _r(R.UNIT, R.ADMIN), None, "case.reported_in"),
    A.ADD_COHANDLER: Expect(OPEN, DISPATCHERS, None, "case.cohandler_added"),
    A.MARK_OVERDUE: Expect(OPEN - {S.RESOLVED}, _r(R.SYSTEM), None, "case.overdue"),
    A.SELF_HANDLE: Expect(_s(S.REPORTED), _r(R.SYSTEM), S.CLOSED, "case.self_handled"),
    A.RECOMPUTE_DEADLINE: Expect(OPEN - {S.RESOLVED}, _r(R.SYSTEM), None, "case.deadline_recomputed"),
    # the approval and alarm sources, invalid reports
    A.MARK_INVALID: Expect(_s(S.TRIAGE, S.DISPATCHED), DISPATCHERS, S.CLOSED, "case.invalidated"),
    A.ADD_OCCURRENCE: Expect(OPEN, _r(R.SYSTEM), None, "case.occurrence_added"),
    A.AUTO_RECOVER: Expect(_s(S.REPORTED, S.TRIAGE, S.DISPATCHED, S.REJECTED), _r(R.SYSTEM), S.CLOSED,
                           "case.auto_recovered"),
    A.MARK_FALSE_ALARM: Expect(ALL, DISPATCHERS, None, "case.false_alarm"),
    A.RECORD_INSPECTION: Expect(_s(S.ACCEPTED, S.REOPENED), _r(R.UNIT), S.CLOSED, "case.inspected"),
    A.REVOKE: Expect(OPEN, _r(R.SYSTEM), S.CLOSED, "case.revoked"),
    A.ASSIGN_MEMBER: Expect(_s(S.ACCEPTED, S.REOPENED), _r(R.UNIT, R.DISPATCHER, R.ADMIN), None,
                            "case.member_assigned"),
}
# fmt: on

#: States in which the fixture case has PRIMARY as primary unit (a unit acts only there; report_in aside).
UNIT_IS_PRIMARY_IN = _s(S.DISPATCHED, S.ACCEPTED, S.RESOLVED, S.CLOSED, S.REOPENED)


def expected_refusal(state: CaseState, action: Action, role: Role) -> RefusalKind | None:
    """None if the triple must succeed, else the refusal kind it must get."""
    expect = EXPECTED[action]
    if role not in expect.roles:
        return "forbidden"
    if role in (R.UNIT, R.MEMBER) and action is not A.REPORT_IN and state not in UNIT_IS_PRIMARY_IN:
        return "forbidden"  # not the primary unit of this case
    if state not in expect.states:
        return "not_allowed"
    return None


# --------------------------------------------------------------------------- fixtures


def case_in(state: CaseState, **overrides: Any) -> CaseSnapshot:
    """A plausible 12345 case in ``state``."""
    fields: dict[str, Any] = {
        "id": "C-1",
        "township": TOWNSHIP,
        "source": "12345",
        "reported_at": T0,
        "state": state,
        "version": 1,
    }
    if state is not S.REPORTED:
        fields |= {"version": 6, "last_transition_at": T0 + timedelta(hours=2), "matter": "垃圾暴露"}
    if state in UNIT_IS_PRIMARY_IN:
        fields |= {
            "primary_unit": PRIMARY,
            "deadline": DEADLINE,
            "reject_window_ends_at": NOW + timedelta(days=1),
            "assignee": MEMBER_ID,
            "assignee_kind": "member",
            "assignees": (MEMBER_ID,),
        }
    if state is S.REJECTED:
        fields["rejections"] = (Rejection(unit="U0", reason="不是我们的", at=T0 + timedelta(hours=1)),)
    if state is S.REOPENED:
        fields["rework_count"] = 1
    fields |= overrides
    return CaseSnapshot(**fields)


def prepare(case: CaseSnapshot, action: Action) -> CaseSnapshot:
    """Make the case-level preconditions of ``action`` hold (they are tested separately)."""
    update: dict[str, Any] = {}
    if action is A.REQUEST_EXTENSION:
        update = {"deadline": DEADLINE, "extension_pending": None}
    elif action is A.DECIDE_EXTENSION:
        update = {
            "deadline": DEADLINE,
            "extension_pending": ExtensionRequest(
                new_deadline=DEADLINE + timedelta(days=3), reason="材料未齐", requested_at=case.previous_at
            ),
        }
    elif action is A.RULE_REJECTION and not case.rejections:
        update = {"rejections": (Rejection(unit="U0", reason="不是我们的", at=case.previous_at),)}
    elif action is A.REOPEN:
        update = {"satisfaction": Satisfaction.UNSATISFIED, "solved": False}
    elif action is A.REPORT_IN:
        update = {
            "escalation": Escalation(department=DEPARTMENT, reason="需执法", escalated_at=case.previous_at)
        }
    elif action is A.MARK_OVERDUE:
        update = {"deadline": NOW - timedelta(hours=1), "overdue": False}
    elif action is A.RECOMPUTE_DEADLINE:
        update = {"deadline": DEADLINE}
    elif action in (A.ADD_OCCURRENCE, A.AUTO_RECOVER, A.MARK_FALSE_ALARM):
        update = {"source": "alarm"}
    elif action in (A.RECORD_INSPECTION, A.REVOKE):
        update = {"kind": "inspection", "source": "approval"}
    return case.model_copy(update=update) if update else case


def body_for(action: Action, case: CaseSnapshot) -> dict[str, Any]:
    """A valid body for ``action`` on ``case``."""
    later = DEADLINE + timedelta(days=3)
    extra: dict[Action, dict[str, Any]] = {
        A.DISPATCH: {"unit": OTHER_UNIT, "deadline": DEADLINE},
        A.TRIAGE: {"reason": "无法定位"},
        A.ASSIGN: {"unit": OTHER_UNIT, "reason": "人工研判"},
        A.ACCEPT: {},
        A.REJECT: {"reason": "不属于本单位职责"},
        A.REQUEST_EXTENSION: {"new_deadline": later, "reason": "需协调"},
        A.DECIDE_EXTENSION: {"approved": True, "note": "同意"},
        A.RULE_REJECTION: {"valid": True},
        A.REASSIGN: {"unit": OTHER_UNIT, "reason": "职责调整"},
        A.RESOLVE: {"result": "已清理", "photos": ["p1.jpg"]},
        A.VERIFY: {"passed": True},
        A.CLOSE: {},
        A.CALLBACK: {"satisfaction": "satisfied", "solved": True},
        A.REOPEN: {"reason": "群众不满意"},
        A.SUPERVISE: {"note": "请加快办理"},
        A.ESCALATE: {"department": DEPARTMENT, "reason": "需执法力量"},
        A.REPORT_IN: {"note": "已到场"},
        A.ADD_COHANDLER: {"unit": COHANDLER},
        A.MARK_OVERDUE: {},
        A.SELF_HANDLE: {"handler": "GW-7"},
        A.RECOMPUTE_DEADLINE: {"deadline": DEADLINE + timedelta(days=1), "overdue": case.overdue},
        A.MARK_INVALID: {"reason": "not_a_problem", "note": "现场核实无此问题"},
        A.ADD_OCCURRENCE: {"count": 2, "last_raised_at": case.previous_at},
        A.AUTO_RECOVER: {"cleared_at": case.previous_at},
        A.MARK_FALSE_ALARM: {"note": "树影误识别"},
        A.RECORD_INSPECTION: {"result": "compliant", "note": "现场检查合格"},
        A.REVOKE: {"approval_no": "SP-2"},
        A.ASSIGN_MEMBER: {"assignee": "T1", "assignee_kind": "team", "members": ["M2", "M3"]},
    }
    return {"expected_version": case.version, **extra[action]}


def actor_for(role: Role, action: Action) -> Actor:
    return DEPARTMENT_ACTOR if role is R.UNIT and action is A.REPORT_IN else ACTORS[role]


def applied(result: TransitionResult) -> Applied:
    assert isinstance(result, Applied), result
    return result


def refused(result: TransitionResult, kind: RefusalKind) -> Refused:
    assert isinstance(result, Refused), result
    assert result.kind == kind, result
    return result


# --------------------------------------------------------------------------- the exhaustive test


TRIPLES = list(itertools.product(CaseState, Action, Role))


@pytest.mark.parametrize(("state", "action", "role"), TRIPLES, ids=[f"{s}-{a}-{r}" for s, a, r in TRIPLES])
def test_every_state_action_role(state: CaseState, action: Action, role: Role) -> None:
    case = prepare(case_in(state), action)
    actor = actor_for(role, action)
    result = apply(case, action, body_for(action, case), actor, NOW)
    kind = expected_refusal(state, action, role)
    disabled = allowed_actions(case, actor, NOW)[action]
    if kind is None:
        ok = applied(result)
        expect = EXPECTED[action]
        assert ok.new_case.state is (expect.target or state)
        assert ok.event_type == expect.event
        assert ok.new_case.version == case.version + 1
        assert ok.changes["version"] == case.version + 1
        assert ok.new_case.last_transition_at == NOW
        assert disabled is None
    else:
        no = refused(result, kind)
        assert no.current_state is state
        assert no.current_version == case.version
        assert no.reason
        assert disabled is not None


def test_table_matches_expectations() -> None:
    """The module's one table says what EXPECTED says (a readable diff if they ever drift)."""
    assert set(TRANSITIONS) == set(Action) == set(EXPECTED)
    for action, spec in TRANSITIONS.items():
        assert (action, spec.from_states) == (action, EXPECTED[action].states)
        assert (action, spec.roles) == (action, EXPECTED[action].roles)


def test_event_types_are_in_the_shared_contract() -> None:
    events = pytest.importorskip("shared.events")
    emitted = {e.event for e in EXPECTED.values()} | {"case.extension_denied"}
    assert emitted <= set(events.CASE_EVENT_TYPES)


# --------------------------------------------------------------------------- rejection 退单


def _dispatch(case: CaseSnapshot, unit: str, at: datetime) -> CaseSnapshot:
    body = {
        "expected_version": case.version,
        "unit": unit,
        "deadline": DEADLINE,
        "reject_window_ends_at": at + timedelta(days=2),
    }
    return applied(apply(case, A.DISPATCH, body, ACTORS[R.SYSTEM], at)).new_case


def _reject(case: CaseSnapshot, at: datetime) -> CaseSnapshot:
    unit = Actor(R.UNIT, unit=case.primary_unit)
    body = RejectBody(expected_version=case.version, reason="非本单位")
    return applied(apply(case, A.REJECT, body, unit, at)).new_case


def test_redispatch_never_returns_to_a_rejecting_unit_and_triage_after_two() -> None:
    candidates = ["U1", "U2", "U3"]
    case = _dispatch(case_in(S.REPORTED), "U1", T0 + timedelta(minutes=1))
    case = _reject(case, T0 + timedelta(hours=1))
    assert case.state is S.REJECTED and case.primary_unit is None
    assert case.rejected_by == ("U1",) and case.rejection_count == 1

    decision = after_rejection(case, candidates)
    assert decision == ("dispatch", "U2")
    # the rejecting unit cannot get it back, not even by hand
    back = apply(case, A.DISPATCH, body_for(A.DISPATCH, case) | {"unit": "U1"}, ACTORS[R.SYSTEM], NOW)
    assert "U1" in refused(back, "invalid").reason
    case = _dispatch(case, decision[1], T0 + timedelta(hours=2))
    case = _reject(case, T0 + timedelta(hours=3))
    assert case.rejected_by == ("U1", "U2") and case.rejection_count == 2

    assert after_rejection(case, candidates) == ("triage", "rejected_too_often")
    assert after_rejection(case, candidates, max_rejections=3) == ("dispatch", "U3")
    assert after_rejection(case, ["U1", "U2"], max_rejections=3) == ("triage", "no_candidate_left")
    body = {"expected_version": case.version, "reason": "rejected_too_often"}
    case = applied(apply(case, A.TRIAGE, body, ACTORS[R.SYSTEM], NOW)).new_case
    assert case.state is S.TRIAGE
    body = {"expected_version": case.version, "unit": "U3", "reason": "人工研判", "matter": "占道经营"}
    result = applied(apply(case, A.ASSIGN, body, ACTORS[R.DISPATCHER], NOW))
    assert result.event_type == "case.assigned"
    assert result.new_case.primary_unit == "U3" and result.new_case.matter == "占道经营"


def test_after_rejection_needs_a_rejected_case() -> None:
    with pytest.raises(ValueError):
        after_rejection(case_in(S.DISPATCHED), ["U2"])


def test_rejection_ruled_invalid_lets_a_dispatcher_send_it_back() -> None:
    case = _reject(case_in(S.DISPATCHED), NOW)
    reassign = {"expected_version": case.version, "unit": PRIMARY, "reason": "职责明确"}
    refused(apply(case, A.REASSIGN, reassign, ACTORS[R.DISPATCHER], NOW), "invalid")

    ruled = applied(
        apply(
            case,
            A.RULE_REJECTION,
            {"expected_version": case.version, "valid": False},
            ACTORS[R.DISPATCHER],
            NOW,
        )
    )
    assert ruled.event_type == "case.rejection_ruled" and ruled.new_case.state is S.REJECTED
    assert ruled.new_case.rejections[-1].valid is False
    again = apply(
        ruled.new_case,
        A.RULE_REJECTION,
        {"expected_version": ruled.new_case.version, "valid": True},
        ACTORS[R.DISPATCHER],
        NOW,
    )
    refused(again, "not_allowed")  # nothing left to rule on
    back = applied(
        apply(
            ruled.new_case,
            A.REASSIGN,
            reassign | {"expected_version": ruled.new_case.version},
            ACTORS[R.DISPATCHER],
            NOW,
        )
    )
    assert back.new_case.primary_unit == PRIMARY and back.new_case.state is S.DISPATCHED


def test_reject_after_the_window_is_refused() -> None:
    case = case_in(S.ACCEPTED, reject_window_ends_at=NOW - timedelta(minutes=1))
    no = refused(apply(case, A.REJECT, body_for(A.REJECT, case), ACTORS[R.UNIT], NOW), "not_allowed")
    assert "退单时限" in no.reason
    assert allowed_actions(case, ACTORS[R.UNIT], NOW)[A.REJECT] == no.reason
    # within the window (history import at an earlier time) it is fine
    earlier = {"occurred_at": NOW - timedelta(hours=1)}
    applied(apply(case, A.REJECT, body_for(A.REJECT, case) | earlier, ACTORS[R.UNIT], NOW))


# --------------------------------------------------------------------------- verification 核查, rework 返工


def _resolve(case: CaseSnapshot, at: datetime) -> CaseSnapshot:
    body = {"expected_version": case.version, "result": "已处理", "photos": ["a.jpg"]}
    return applied(apply(case, A.RESOLVE, body, ACTORS[R.UNIT], at)).new_case


def _verify(case: CaseSnapshot, passed: bool, at: datetime) -> Applied:
    body = {"expected_version": case.version, "passed": passed, "note": "现场核查"}
    return applied(apply(case, A.VERIFY, body, ACTORS[R.DISPATCHER], at))


def test_failed_verification_reopens_to_the_same_unit_and_counts_rework() -> None:
    case = _resolve(case_in(S.ACCEPTED), NOW)
    failed = _verify(case, False, NOW + timedelta(hours=1))
    assert failed.event_type == "case.verified"
    assert failed.new_case.state is S.REOPENED
    assert failed.new_case.primary_unit == PRIMARY
    assert failed.new_case.rework_count == 1 and failed.new_case.verification_passed is False
    case = _resolve(failed.new_case, NOW + timedelta(hours=2))
    assert case.verification_passed is None
    case = _verify(case, False, NOW + timedelta(hours=3)).new_case
    assert case.rework_count == 2
    case = _resolve(case, NOW + timedelta(hours=4))
    passed = _verify(case, True, NOW + timedelta(hours=5))
    assert passed.new_case.state is S.CLOSED and passed.new_case.rework_count == 2


# --------------------------------------------------------------------------- concurrency, time


def test_stale_version_is_a_conflict() -> None:
    case = case_in(S.DISPATCHED)
    body = body_for(A.REASSIGN, case)
    first = applied(apply(case, A.REASSIGN, body, ACTORS[R.DISPATCHER], NOW))
    # the second dispatcher acted on the same snapshot: one wins, the other gets a conflict
    second = refused(
        apply(
            first.new_case,
            A.SUPERVISE,
            {"expected_version": case.version, "note": "快"},
            ACTORS[R.ADMIN],
            NOW,
        ),
        "conflict",
    )
    assert second.current_version == case.version + 1
    assert second.current_state is S.DISPATCHED
    refused(
        apply(case, A.ACCEPT, AcceptBody(expected_version=case.version + 3), ACTORS[R.UNIT], NOW), "conflict"
    )


def test_occurred_at_in_the_future_or_before_the_previous_transition_is_invalid() -> None:
    case = case_in(S.DISPATCHED)
    future = {"expected_version": case.version, "occurred_at": NOW + timedelta(seconds=1)}
    assert "future" in refused(apply(case, A.ACCEPT, future, ACTORS[R.UNIT], NOW), "invalid").reason
    past = {"expected_version": case.version, "occurred_at": case.previous_at - timedelta(seconds=1)}
    assert "previous" in refused(apply(case, A.ACCEPT, past, ACTORS[R.UNIT], NOW), "invalid").reason
    naive = {"expected_version": case.version, "occurred_at": "2026-03-02T10:00:00"}
    refused(apply(case, A.ACCEPT, naive, ACTORS[R.UNIT], NOW), "invalid")
    at = case.previous_at  # same instant as the previous transition is fine
    ok = applied(
        apply(case, A.ACCEPT, {"expected_version": case.version, "occurred_at": at}, ACTORS[R.UNIT], NOW)
    )
    assert ok.new_case.last_transition_at == at and ok.at == at
    # a new case: nothing before the report
    fresh = case_in(S.REPORTED)
    early = body_for(A.DISPATCH, fresh) | {"occurred_at": T0 - timedelta(minutes=1)}
    refused(apply(fresh, A.DISPATCH, early, ACTORS[R.SYSTEM], NOW), "invalid")


def test_now_must_be_timezone_aware() -> None:
    case = case_in(S.DISPATCHED)
    with pytest.raises(ValueError):
        apply(case, A.ACCEPT, {"expected_version": case.version}, ACTORS[R.UNIT], NOW.replace(tzinfo=None))


def test_invalid_bodies() -> None:
    case = case_in(S.DISPATCHED)
    refused(apply(case, A.REJECT, {"expected_version": case.version}, ACTORS[R.UNIT], NOW), "invalid")
    blank = {"expected_version": case.version, "reason": "   "}
    refused(apply(case, A.REJECT, blank, ACTORS[R.UNIT], NOW), "invalid")
    extra = {"expected_version": case.version, "reason": "x", "colour": "red"}
    refused(apply(case, A.REJECT, extra, ACTORS[R.UNIT], NOW), "invalid")
    wrong_model = AcceptBody(expected_version=case.version)
    assert "RejectBody" in refused(apply(case, A.REJECT, wrong_model, ACTORS[R.UNIT], NOW), "invalid").reason
    dispatch_late = body_for(A.REASSIGN, case) | {"deadline": NOW - timedelta(hours=1)}
    refused(apply(case, A.REASSIGN, dispatch_late, ACTORS[R.DISPATCHER], NOW), "invalid")
    same_unit = body_for(A.REASSIGN, case) | {"unit": PRIMARY}
    refused(apply(case, A.REASSIGN, same_unit, ACTORS[R.DISPATCHER], NOW), "invalid")


# --------------------------------------------------------------------------- extensions 延期


def test_extension_request_and_decision() -> None:
    case = case_in(S.ACCEPTED, overdue=True, deadline=NOW - timedelta(hours=2))
    unit, dispatcher = ACTORS[R.UNIT], ACTORS[R.DISPATCHER]
    earlier = {"expected_version": case.version, "new_deadline": case.deadline, "reason": "x"}
    refused(apply(case, A.REQUEST_EXTENSION, earlier, unit, NOW), "invalid")
    new_deadline = NOW + timedelta(days=3)
    request = {"expected_version": case.version, "new_deadline": new_deadline, "reason": "需要协调"}
    pending = applied(apply(case, A.REQUEST_EXTENSION, request, unit, NOW)).new_case
    assert pending.extension_pending is not None and pending.deadline == case.deadline
    second = request | {"expected_version": pending.version}
    refused(apply(pending, A.REQUEST_EXTENSION, second, unit, NOW), "not_allowed")  # one at a time

    denied = applied(
        apply(
            pending,
            A.DECIDE_EXTENSION,
            {"expected_version": pending.version, "approved": False},
            dispatcher,
            NOW,
        )
    )
    assert denied.event_type == "case.extension_denied"
    assert denied.new_case.deadline == case.deadline and denied.new_case.extension_pending is None
    assert denied.new_case.extension_count == 0 and denied.new_case.overdue is True

    approved = applied(
        apply(
            pending,
            A.DECIDE_EXTENSION,
            {"expected_version": pending.version, "approved": True},
            dispatcher,
            NOW,
        )
    )
    assert approved.event_type == "case.extended"
    assert approved.new_case.deadline == new_deadline and approved.new_case.extension_count == 1
    assert approved.new_case.overdue is False  # judged against the new deadline
    refused(
        apply(
            approved.new_case,
            A.DECIDE_EXTENSION,
            {"expected_version": approved.new_case.version, "approved": True},
            dispatcher,
            NOW,
        ),
        "not_allowed",
    )


def test_pending_extension_lapses_when_the_case_is_resolved() -> None:
    case = prepare(case_in(S.ACCEPTED), A.DECIDE_EXTENSION)
    resolved = _resolve(case, NOW)
    assert resolved.extension_pending is None


# --------------------------------------------------------------------------- callback 回访, reopen 重办


def test_callback_only_for_12345_cases() -> None:
    hotline = ACTORS[R.HOTLINE]
    grid_case = case_in(S.CLOSED, source="cityops")
    no = refused(apply(grid_case, A.CALLBACK, body_for(A.CALLBACK, grid_case), hotline, NOW), "not_allowed")
    assert "12345" in no.reason
    case = case_in(S.CLOSED)
    done = applied(apply(case, A.CALLBACK, body_for(A.CALLBACK, case), hotline, NOW)).new_case
    assert done.satisfaction is Satisfaction.SATISFIED and done.solved is True and done.callback_count == 1
    refused(
        apply(done, A.CALLBACK, body_for(A.CALLBACK, done), hotline, NOW), "not_allowed"
    )  # once per closure
    # not unsatisfied → no 重办
    refused(apply(done, A.REOPEN, body_for(A.REOPEN, done), ACTORS[R.DISPATCHER], NOW), "not_allowed")


def test_reopen_only_after_an_unsatisfied_callback() -> None:
    case = case_in(S.CLOSED)
    refused(apply(case, A.REOPEN, body_for(A.REOPEN, case), ACTORS[R.DISPATCHER], NOW), "not_allowed")
    unhappy = {"expected_version": case.version, "satisfaction": "unsatisfied", "solved": False}
    case = applied(apply(case, A.CALLBACK, unhappy, ACTORS[R.HOTLINE], NOW)).new_case
    new_deadline = NOW + timedelta(days=2)
    body = body_for(A.REOPEN, case) | {"deadline": new_deadline}
    reopened = applied(apply(case, A.REOPEN, body, ACTORS[R.DISPATCHER], NOW)).new_case
    assert reopened.state is S.REOPENED and reopened.primary_unit == PRIMARY
    assert reopened.reopen_count == 1 and reopened.satisfaction is None and reopened.deadline == new_deadline


# --------------------------------------------------------------------------- scope 数据范围, co-handlers 协办


def test_cohandler_cannot_resolve() -> None:
    case = case_in(S.ACCEPTED)
    case = applied(
        apply(case, A.ADD_COHANDLER, body_for(A.ADD_COHANDLER, case), ACTORS[R.DISPATCHER], NOW)
    ).new_case
    assert case.cohandlers == (COHANDLER,)
    cohandler = Actor(R.UNIT, unit=COHANDLER, township=TOWNSHIP)
    assert can_see(case, cohandler) and not may_act(case, cohandler)
    no = refused(apply(case, A.RESOLVE, body_for(A.RESOLVE, case), cohandler, NOW), "forbidden")
    assert "协办" in no.reason
    assert allowed_actions(case, cohandler, NOW)[A.RESOLVE] is not None
    applied(apply(case, A.RESOLVE, body_for(A.RESOLVE, case), ACTORS[R.UNIT], NOW))
    # adding the same co-handler, or the primary unit, is invalid
    for unit in (COHANDLER, PRIMARY):
        body = {"expected_version": case.version, "unit": unit}
        refused(apply(case, A.ADD_COHANDLER, body, ACTORS[R.DISPATCHER], NOW), "invalid")


def test_reassign_to_a_cohandler_makes_it_primary_only() -> None:
    case = case_in(S.ACCEPTED, cohandlers=(COHANDLER, "U4"))
    body = body_for(A.REASSIGN, case) | {"unit": COHANDLER}
    new = applied(apply(case, A.REASSIGN, body, ACTORS[R.DISPATCHER], NOW)).new_case
    assert new.primary_unit == COHANDLER and new.cohandlers == ("U4",)


def test_township_scope() -> None:
    case = case_in(S.RESOLVED)
    elsewhere = Actor(R.DISPATCHER, township="330127102")
    county = Actor(R.DISPATCHER, township="*")
    unbound = Actor(R.DISPATCHER)
    for actor in (elsewhere, unbound):
        assert not can_see(case, actor) and not may_act(case, actor)
        refused(apply(case, A.VERIFY, body_for(A.VERIFY, case), actor, NOW), "forbidden")
    assert can_see(case, county) and may_act(case, county)
    applied(apply(case, A.VERIFY, body_for(A.VERIFY, case), county, NOW))


def test_visibility() -> None:
    case = case_in(
        S.ACCEPTED,
        cohandlers=(COHANDLER,),
        escalation=Escalation(department=DEPARTMENT, reason="r", escalated_at=T0),
    )
    sees = {
        Actor(R.UNIT, unit=PRIMARY): True,
        Actor(R.UNIT, unit=COHANDLER): True,
        Actor(R.UNIT, unit=DEPARTMENT): True,
        Actor(R.UNIT, unit="U7"): False,
        Actor(R.UNIT): False,
        Actor(R.TOWNSHIP_ADMIN, township=TOWNSHIP): True,
        Actor(R.TOWNSHIP_ADMIN, township="other"): False,
        Actor(R.DISPATCHER, township="*"): True,
        Actor(R.HOTLINE): True,
        Actor(R.ADMIN): True,
    }
    assert {actor: can_see(case, actor) for actor in sees} == sees
    assert may_act(case, DEPARTMENT_ACTOR, A.REPORT_IN) and not may_act(case, DEPARTMENT_ACTOR, A.RESOLVE)


# --------------------------------------------------------------------------- 吹哨/报到, 督办, 超期


def test_escalation_and_report_in() -> None:
    case = case_in(S.ACCEPTED)
    township = ACTORS[R.TOWNSHIP_ADMIN]
    refused(apply(case, A.REPORT_IN, body_for(A.REPORT_IN, case), DEPARTMENT_ACTOR, NOW), "forbidden")
    escalated = applied(apply(case, A.ESCALATE, body_for(A.ESCALATE, case), township, NOW)).new_case
    assert escalated.escalation_department == DEPARTMENT and escalated.escalation_count == 1
    assert escalated.escalation is not None and escalated.escalation.pending
    again = body_for(A.ESCALATE, escalated) | {"department": "DEPT-GT"}
    refused(apply(escalated, A.ESCALATE, again, township, NOW), "not_allowed")  # one pending at a time
    stranger = Actor(R.UNIT, unit="DEPT-GT")
    refused(apply(escalated, A.REPORT_IN, body_for(A.REPORT_IN, escalated), stranger, NOW), "forbidden")
    refused(apply(escalated, A.REPORT_IN, body_for(A.REPORT_IN, escalated), ACTORS[R.UNIT], NOW), "forbidden")
    later = NOW + timedelta(hours=1)
    acknowledged = applied(
        apply(escalated, A.REPORT_IN, body_for(A.REPORT_IN, escalated), DEPARTMENT_ACTOR, later)
    )
    assert acknowledged.event_type == "case.reported_in"
    assert acknowledged.new_case.escalation is not None
    assert acknowledged.new_case.escalation.reported_in_at == later
    ack = acknowledged.new_case
    refused(apply(ack, A.REPORT_IN, body_for(A.REPORT_IN, ack), DEPARTMENT_ACTOR, later), "not_allowed")
    second = applied(
        apply(ack, A.ESCALATE, again | {"expected_version": ack.version}, township, later)
    ).new_case
    assert second.escalation_department == "DEPT-GT" and second.escalation_count == 2


def test_supervise_counts_without_changing_state() -> None:
    case = case_in(S.DISPATCHED, overdue=True)
    for n in (1, 2):
        at = NOW + timedelta(hours=n)
        result = applied(apply(case, A.SUPERVISE, body_for(A.SUPERVISE, case), ACTORS[R.DISPATCHER], at))
        case = result.new_case
        assert case.supervise_count == n and case.state is S.DISPATCHED
        assert set(result.changes) == {"supervise_count", "version", "last_transition_at"}


def test_mark_overdue_refuses_when_already_flagged_or_not_yet_due() -> None:
    system = ACTORS[R.SYSTEM]
    not_due = case_in(S.ACCEPTED)  # deadline in a week
    assert (
        "deadline"
        in refused(
            apply(not_due, A.MARK_OVERDUE, body_for(A.MARK_OVERDUE, not_due), system, NOW), "not_allowed"
        ).reason
    )
    due = prepare(case_in(S.ACCEPTED), A.MARK_OVERDUE)
    flagged = applied(apply(due, A.MARK_OVERDUE, body_for(A.MARK_OVERDUE, due), system, NOW)).new_case
    assert flagged.overdue is True
    again = refused(
        apply(flagged, A.MARK_OVERDUE, body_for(A.MARK_OVERDUE, flagged), system, NOW), "not_allowed"
    )
    assert "already" in again.reason
    no_deadline = case_in(S.TRIAGE)
    refused(
        apply(no_deadline, A.MARK_OVERDUE, body_for(A.MARK_OVERDUE, no_deadline), system, NOW), "not_allowed"
    )


def test_self_handled_report_closes_at_once() -> None:
    case = case_in(S.REPORTED, source="gridworker")
    result = applied(apply(case, A.SELF_HANDLE, body_for(A.SELF_HANDLE, case), ACTORS[R.SYSTEM], NOW))
    assert result.event_type == "case.self_handled"
    assert (
        result.new_case.state is S.CLOSED
        and result.new_case.self_handled
        and result.new_case.handler == "GW-7"
    )


# --------------------------------------------------------------------------- replay 时间线回放


class Recorder:
    """Drives a case through transitions and keeps its timeline, as the service would."""

    def __init__(self, case: CaseSnapshot) -> None:
        self.case = case
        self.timeline: list[TimelineEntry] = [reported_entry(case, ACTORS[R.SYSTEM])]
        self.clock = case.reported_at

    def do(self, action: Action, actor: Actor, hours: float = 1, **fields: Any) -> Applied:
        self.clock += timedelta(hours=hours)
        result = applied(
            apply(self.case, action, {"expected_version": self.case.version, **fields}, actor, self.clock)
        )
        self.case = result.new_case
        self.timeline.append(result.to_entry())
        return result


def _stored(timeline: list[TimelineEntry]) -> list[TimelineEntry]:
    """Through JSON and back, as a database or a topic would keep it."""
    return [TimelineEntry.model_validate_json(entry.model_dump_json()) for entry in timeline]


def test_replay_of_the_12345_loop() -> None:
    rec = Recorder(CaseSnapshot(id="C-12345", township=TOWNSHIP, source="12345", reported_at=T0))
    unit, dispatcher, hotline = ACTORS[R.UNIT], ACTORS[R.DISPATCHER], ACTORS[R.HOTLINE]
    deadline = T0 + timedelta(days=5)
    rec.do(
        A.DISPATCH,
        ACTORS[R.SYSTEM],
        0.1,
        unit=PRIMARY,
        deadline=deadline,
        reject_window_ends_at=T0 + timedelta(days=2),
    )
    rec.do(A.ACCEPT, unit, 2)
    rec.do(A.REQUEST_EXTENSION, unit, 20, new_deadline=deadline + timedelta(days=5), reason="需协调")
    rec.do(A.DECIDE_EXTENSION, dispatcher, 1, approved=True, note="同意")
    rec.do(A.RESOLVE, unit, 30, result="已清理", photos=["1.jpg"])
    rec.do(A.VERIFY, dispatcher, 2, passed=False, note="未清理干净")
    rec.do(A.RESOLVE, unit, 5, result="再次清理", photos=["2.jpg"])
    rec.do(A.VERIFY, dispatcher, 1, passed=True)
    rec.do(A.CALLBACK, hotline, 24, satisfaction="unsatisfied", solved=False)
    rec.do(A.REOPEN, dispatcher, 1, reason="群众不满意")
    rec.do(A.RESOLVE, unit, 10, result="彻底处理")
    rec.do(A.VERIFY, dispatcher, 1, passed=True)

    final = rec.case
    assert [e.event_type for e in rec.timeline] == [
        "case.reported",
        "case.dispatched",
        "case.accepted",
        "case.extension_requested",
        "case.extended",
        "case.resolved",
        "case.verified",
        "case.resolved",
        "case.verified",
        "case.callback_recorded",
        "case.reopened",
        "case.resolved",
        "case.verified",
    ]
    assert final.state is S.CLOSED and final.version == 13
    assert final.deadline == deadline + timedelta(days=5) and final.extension_count == 1
    assert final.rework_count == 1 and final.reopen_count == 1 and final.callback_count == 1
    assert final.satisfaction is None  # the new closure awaits its own callback
    assert replay(rec.timeline) == final
    assert replay(_stored(rec.timeline), recheck=True) == final
    # every prefix replays to the snapshot of that moment
    assert replay(rec.timeline[:6]).state is S.RESOLVED


def test_replay_of_a_rejection_escalation_scenario() -> None:
    rec = Recorder(CaseSnapshot(id="C-2", township=TOWNSHIP, source="cityops", reported_at=T0))
    system, dispatcher = ACTORS[R.SYSTEM], ACTORS[R.DISPATCHER]
    rec.do(A.DISPATCH, system, unit="U1", deadline=T0 + timedelta(hours=8))
    rec.do(A.REJECT, Actor(R.UNIT, unit="U1"), reason="非本单位")
    rec.do(A.DISPATCH, system, unit="U2", deadline=T0 + timedelta(hours=8))
    rec.do(A.RULE_REJECTION, dispatcher, valid=True, unit="U1")
    rec.do(A.ACCEPT, Actor(R.UNIT, unit="U2"))
    rec.do(A.ADD_COHANDLER, dispatcher, unit="U5")
    rec.do(A.MARK_OVERDUE, system, 6)
    rec.do(A.SUPERVISE, dispatcher, note="请尽快")
    rec.do(A.ESCALATE, ACTORS[R.TOWNSHIP_ADMIN], department=DEPARTMENT, reason="需执法")
    rec.do(A.REPORT_IN, DEPARTMENT_ACTOR, note="已到场")
    rec.do(A.RESOLVE, Actor(R.UNIT, unit="U2"), result="联合处置完成")
    rec.do(A.CLOSE, dispatcher)
    final = rec.case
    assert final.state is S.CLOSED and final.overdue and final.rejected_by == ("U1",)
    assert final.rejections[0].valid is True and final.cohandlers == ("U5",)
    assert replay(_stored(rec.timeline), recheck=True) == final


def test_replay_rejects_a_broken_timeline() -> None:
    rec = Recorder(case_in(S.REPORTED))
    rec.do(A.TRIAGE, ACTORS[R.SYSTEM], reason="无法定位")
    rec.do(A.ASSIGN, ACTORS[R.DISPATCHER], unit="U2", reason="人工研判")
    with pytest.raises(ValueError):
        replay([])
    with pytest.raises(ValueError):
        replay(rec.timeline[1:])  # no creation entry
    with pytest.raises(ValueError):
        replay([rec.timeline[0], rec.timeline[2]])  # a gap
    tampered = rec.timeline[2].model_copy(update={"body": {**rec.timeline[2].body, "unit": "U8"}})
    with pytest.raises(ValueError):
        replay([*rec.timeline[:2], tampered], recheck=True)
    assert replay([*rec.timeline[:2], tampered]).primary_unit == "U2"  # without recheck the changes rule


# --------------------------------------------------------------------------- random walks


UNIT_POOL = ("U1", "U2", "U3", "U4", "U5", "U6")


def _random_body(
    rng: random.Random, case: CaseSnapshot, action: Action, at: datetime
) -> dict[str, Any] | None:
    """A valid body, or None when no valid body exists (e.g. every unit already rejected the case)."""
    blocked = {r.unit for r in case.rejections if r.valid is not False}
    fresh = [u for u in UNIT_POOL if u not in blocked and u != case.primary_unit and u not in case.cohandlers]
    if not fresh and action in (A.DISPATCH, A.ASSIGN, A.REASSIGN, A.ADD_COHANDLER):
        return None
    deadline = at + timedelta(hours=rng.randint(2, 72))
    fields: dict[str, Any]
    if action in (A.DISPATCH, A.ASSIGN, A.REASSIGN):
        fields = {
            "unit": rng.choice(fresh),
            "deadline": deadline,
            "reason": "r",
            "reject_window_ends_at": at + timedelta(hours=rng.randint(1, 48)),
        }
        if action is A.DISPATCH:
            del fields["reason"]
    elif action is A.REQUEST_EXTENSION:
        assert case.deadline is not None
        fields = {"new_deadline": case.deadline + timedelta(hours=rng.randint(1, 48)), "reason": "r"}
    elif action is A.DECIDE_EXTENSION:
        fields = {"approved": rng.random() < 0.5}
    elif action is A.RULE_REJECTION:
        fields = {"valid": rng.random() < 0.5}
    elif action is A.VERIFY:
        fields = {"passed": rng.random() < 0.6}
    elif action is A.CALLBACK:
        fields = {"satisfaction": rng.choice(list(Satisfaction)), "solved": rng.random() < 0.5}
    elif action is A.ESCALATE:
        fields = {"department": rng.choice(["DEPT-ZJ", "DEPT-GT"]), "reason": "r"}
    elif action is A.ADD_COHANDLER:
        fields = {"unit": rng.choice(fresh)}
    elif action is A.ASSIGN_MEMBER:
        member = rng.choice([m for m in ("M1", "M2", "M3") if m != case.assignee])
        fields = {"assignee": member, "assignee_kind": "member", "members": [member]}
    else:
        fields = body_for(action, case)
        del fields["expected_version"]
    return {"expected_version": case.version, **fields}


def _candidate_actors(case: CaseSnapshot) -> list[Actor]:
    actors = [ACTORS[role] for role in Role if role is not R.UNIT]
    for unit in {case.primary_unit, case.escalation_department} - {None}:
        actors.append(Actor(R.UNIT, unit=unit))
    for member in case.assignees:  # 派单到人: the members holding the task act on it
        actors.append(Actor(R.MEMBER, unit=case.primary_unit, township=TOWNSHIP, id=member))
    return actors


@pytest.mark.parametrize("seed", range(40))
def test_random_walk_allowed_actions_succeed_and_replay(seed: int) -> None:
    """Whatever allowed_actions offers, apply accepts (with a sensible body); the timeline replays."""
    rng = random.Random(seed)
    source = rng.choice(["12345", "cityops", "gridworker"])
    rec = Recorder(CaseSnapshot(id=f"C-{seed}", township=TOWNSHIP, source=source, reported_at=T0))
    for _ in range(60):
        at = rec.clock + timedelta(hours=rng.choice([0.5, 2, 12, 30]))
        options = [
            (action, actor)
            for actor in _candidate_actors(rec.case)
            for action, why_not in allowed_actions(rec.case, actor, at).items()
            if why_not is None
        ]
        rng.shuffle(options)
        picked = next(
            (
                (a, who, body)
                for a, who in options
                if (body := _random_body(rng, rec.case, a, at)) is not None
            ),
            None,
        )
        if picked is None:
            break
        action, actor, body = picked
        result = apply(rec.case, action, body, actor, at)
        assert isinstance(result, Applied), (action, actor, result)
        rec.case, rec.clock = result.new_case, at
        rec.timeline.append(result.to_entry())
    assert replay(_stored(rec.timeline), recheck=True) == rec.case
