"""联合执法's transition table (services/dispatch/forces/operation_rules.py): 报到 on time and late, absent
units at the conclusion, who may do what, versions and states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.dispatch.forces.operation_rules import Applied, OpActor, Operation, OpState, Refused, apply, late_units

START = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
OP = Operation(id="op1", township="T1", lead_unit="A", units=("A", "B", "C"), starts_at=START,
               ends_at=START + timedelta(hours=3), place="桥头", cases=("c1",))  # fmt: skip
DISP = OpActor("dispatcher", township="T1", id="d")
A, B, C = (OpActor("unit", unit=u, township="T1") for u in "ABC")


def ok(result: Applied | Refused) -> Operation:
    assert isinstance(result, Applied), result
    return result.new


def test_confirmations_on_time_late_and_absent() -> None:
    op = ok(apply(OP, "confirm", {"expected_version": 1, "people": ["a1", "a2"]}, A, START - timedelta(minutes=10)))
    assert op.confirmations["A"].late is False and op.confirmations["A"].people == ("a1", "a2")
    assert late_units(op, START - timedelta(minutes=1)) == []  # not started yet
    assert late_units(op, START + timedelta(minutes=1)) == ["B", "C"]
    op = ok(apply(op, "confirm", {"expected_version": 2, "people": ["b1"]}, B, START + timedelta(minutes=20)))
    assert op.confirmations["B"].late is True  # 20 min after the start: 迟到
    again = apply(op, "confirm", {"expected_version": 3, "people": ["b2"]}, B, START + timedelta(minutes=30))
    assert isinstance(again, Refused) and again.kind == "not_allowed"
    done = apply(op, "conclude", {"expected_version": 3, "result": "已清理占道", "apply": "resolve"}, A,
                 START + timedelta(hours=2))  # fmt: skip
    new = ok(done)
    assert (new.state, new.absent, new.result, new.version) == (OpState.CONCLUDED, ("C",), "已清理占道", 4)
    assert isinstance(done, Applied) and set(done.changes) == {"state", "absent", "result", "apply_result",
                                                               "version", "last_transition_at"}  # fmt: skip


@pytest.mark.parametrize(
    ("action", "body", "actor", "kind"),
    [
        ("confirm", {"people": ["x"]}, OpActor("unit", unit="Z"), "forbidden"),  # not participating
        ("confirm", {"people": ["x"]}, DISP, "forbidden"),  # dispatchers do not 报到
        ("conclude", {"result": "r"}, B, "forbidden"),  # only the lead unit or command
        ("cancel", {"reason": "r"}, A, "forbidden"),  # units do not cancel
        ("cancel", {"reason": "r"}, OpActor("dispatcher", township="T2"), "forbidden"),  # another township
        ("confirm", {"people": []}, A, "invalid"),  # someone must go
        ("conclude", {"result": "r", "apply": "maybe"}, A, "invalid"),
        ("unknown", {}, A, "invalid"),
    ],
)
def test_refusals(action: str, body: dict[str, object], actor: OpActor, kind: str) -> None:
    result = apply(OP, action, {"expected_version": 1, **body}, actor, START)
    assert isinstance(result, Refused) and result.kind == kind, result


def test_versions_and_closed_states() -> None:
    stale = apply(OP, "confirm", {"expected_version": 7, "people": ["a"]}, A, START)
    assert isinstance(stale, Refused) and stale.kind == "conflict"
    cancelled = ok(apply(OP, "cancel", {"expected_version": 1, "reason": "天气"}, DISP, START))
    assert cancelled.state is OpState.CANCELLED and late_units(cancelled, START + timedelta(hours=1)) == []
    after = apply(cancelled, "confirm", {"expected_version": 2, "people": ["a"]}, A, START)
    assert isinstance(after, Refused) and after.kind == "not_allowed"
    admin = ok(apply(OP, "confirm", {"expected_version": 1, "unit": "C", "people": ["c1"]}, OpActor("admin"), START))
    assert "C" in admin.confirmations and admin.confirmations["C"].late is False  # at the start: on time
