"""联合执法未报到 in 监督问责 (services.metrics.operations): the fold of one operation's events and the period's
findings, with the expected lapses worked out by hand beside each case."""

from __future__ import annotations

from datetime import datetime
from itertools import count
from typing import Any

from services.metrics.accountability import AccountabilityReport, with_findings
from services.metrics.operations import Lapse, OperationEventRecord, fold_operation, operation_findings
from services.metrics.periods import TZ, parse_period

NOV = parse_period("2026-11")
AS_OF = datetime(2026, 12, 4, 12, 0, tzinfo=TZ)
_ids = count(1)


def t(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


class Op:
    """One operation's events as dispatch publishes them: each carries the state after it."""

    def __init__(self, op_id: str, *, starts: datetime, ends: datetime, units: list[str], cases: list[str],
                 township: str = "T1") -> None:  # fmt: skip
        self.id, self.version = op_id, 0
        self.snapshot: dict[str, Any] = {
            "state": "open", "township": township, "lead_unit": units[0], "units": units,
            "starts_at": starts.isoformat(), "ends_at": ends.isoformat(), "cases": cases,
            "confirmed_late": [], "absent": [],
        }  # fmt: skip
        self.events: list[OperationEventRecord] = []

    def emit(self, type_: str, at: datetime, **data: Any) -> OperationEventRecord:
        self.version += 1
        self.snapshot.update({k: v for k, v in data.items() if k in self.snapshot})
        payload = {**self.snapshot, "unit": data.get("unit"), "late": data.get("late")}
        record = OperationEventRecord(f"e{next(_ids)}", self.id, type_, self.version, at, payload)
        self.events.append(record)
        return record


def three_units(op_id: str = "op1", *, conclude: datetime | None = t(11, 10, 12)) -> Op:
    # starts 11-10 09:00; A confirms 08:30 (in time), B 09:20 (late), C never → absent at the conclusion.
    op = Op(op_id, starts=t(11, 10, 9), ends=t(11, 10, 11), units=["A", "B", "C"], cases=["c2", "c1"])
    op.emit("operation.opened", t(11, 9, 16))
    op.emit("operation.confirmed", t(11, 10, 8, 30), unit="A", late=False)
    op.emit("operation.confirmed", t(11, 10, 9, 20), unit="B", late=True, confirmed_late=["B"])
    if conclude is not None:
        op.emit("operation.concluded", conclude, state="concluded", absent=["C"])
    return op


def brief(lapses: list[Lapse]) -> list[tuple[str, str, datetime]]:
    return sorted((x.kind, x.unit, x.at) for x in lapses)


def test_one_in_time_one_late_one_absent() -> None:
    lapses = fold_operation(three_units().events)
    # A: 08:30 ≤ 09:00 start → nothing; B: late at its 报到 09:20; C: absent at the conclusion 12:00.
    assert brief(lapses) == [("absent", "C", t(11, 10, 12)), ("late", "B", t(11, 10, 9, 20))]
    assert {x.cases for x in lapses} == {("c1", "c2")}  # the operation's cases, sorted
    assert {(x.township, x.lead_unit, x.starts_at) for x in lapses} == {("T1", "A", t(11, 10, 9))}


def test_the_fold_ignores_order_and_duplicates() -> None:
    events = three_units().events
    shuffled = [events[3], events[1], events[3], events[0], events[2], events[1]]
    assert brief(fold_operation(shuffled)) == brief(fold_operation(events))


def test_open_operation_has_late_units_only_and_a_cancelled_one_no_absent() -> None:
    still_open = three_units(conclude=None)
    assert brief(fold_operation(still_open.events)) == [("late", "B", t(11, 10, 9, 20))]  # C not absent yet
    cancelled = three_units(conclude=None)
    cancelled.emit("operation.cancelled", t(11, 10, 10), state="cancelled")
    assert brief(fold_operation(cancelled.events)) == [("late", "B", t(11, 10, 9, 20))]  # nobody absent


def test_without_the_late_flag_the_start_decides() -> None:
    op = Op("op9", starts=t(11, 3, 9), ends=t(11, 3, 10), units=["A", "B"], cases=[])
    op.emit("operation.opened", t(11, 2))
    op.emit("operation.confirmed", t(11, 3, 9), unit="A")  # at the start exactly: not late
    op.emit("operation.confirmed", t(11, 3, 9, 1), unit="B")  # a minute after: late
    assert brief(fold_operation(op.events)) == [("late", "B", t(11, 3, 9, 1))]


def test_findings_per_unit_in_the_period_each_lapse_happened() -> None:
    # op1: B late 11-10, C absent 11-10 (November). op2: C absent again, concluded 11-20.
    # op3 starts 10-31 23:00: B confirmed late 10-31 23:30 (October), C absent, concluded 11-01 01:00 (November).
    op2 = three_units("op2", conclude=t(11, 20, 12))
    op3 = Op("op3", starts=t(10, 31, 23), ends=t(11, 1, 1), units=["A", "B", "C"], cases=["c9"])
    op3.emit("operation.opened", t(10, 31, 20))
    op3.emit("operation.confirmed", t(10, 31, 23, 30), unit="B", late=True)
    op3.emit("operation.concluded", t(11, 1, 1), state="concluded", absent=["A", "C"])
    lapses = [*fold_operation(three_units().events), *fold_operation(op2.events), *fold_operation(op3.events)]
    found = {(f.kind, f.unit): f for f in operation_findings(lapses, period=NOV, as_of=AS_OF)}
    # C absent from op3 (11-01), op1 (11-10), op2 (11-20): 3 operations, cases c1, c2, c9.
    c = found[("operation_absent", "C")]
    assert (c.count, [o["operation_id"] for o in c.operations], c.cases) == (3, ["op3", "op1", "op2"],
                                                                           ["c1", "c2", "c9"])  # fmt: skip
    # A absent from op3 only; B late in op1 and op2 (op3's lateness is October's).
    assert [o["operation_id"] for o in found[("operation_absent", "A")].operations] == ["op3"]
    b = found[("operation_late", "B")]
    assert ([o["operation_id"] for o in b.operations], [o["at"] for o in b.operations]) == (
        ["op1", "op2"], [t(11, 10, 9, 20).isoformat(), t(11, 10, 9, 20).isoformat()]
    )  # fmt: skip
    assert set(found) == {("operation_absent", "C"), ("operation_absent", "A"), ("operation_late", "B")}
    # As of 11-15 op2 has not concluded yet (11-20): C absent twice; B's two late 报到 (11-10) are known.
    early = operation_findings(lapses, period=NOV, as_of=t(11, 15))
    assert {(f.kind, f.unit): f.count for f in early} == {
        ("operation_absent", "C"): 2, ("operation_absent", "A"): 1, ("operation_late", "B"): 2
    }  # fmt: skip
    # October sees B's late 报到 of op3 only.
    october = operation_findings(lapses, period=parse_period("2026-10"), as_of=AS_OF)
    assert [(f.kind, f.unit, f.cases) for f in october] == [("operation_late", "B", ["c9"])]


def test_the_report_gains_the_section_in_its_order() -> None:
    lapses = fold_operation(three_units().events)
    base = AccountabilityReport(period_id=NOV.id, as_of=AS_OF, findings=())
    assert base.not_covered == ("joint_operations",)
    report = with_findings(base, operation_findings(lapses, period=NOV, as_of=AS_OF), covers="joint_operations")
    body = report.as_json()
    assert body["not_covered"] == []
    rows = body["findings"]
    assert isinstance(rows, list)
    assert [(r["kind"], r["label"], r["unit"], r["count"], r["cases"]) for r in rows] == [
        ("operation_absent", "联合执法未报到（缺席）", "C", 1, ["c1", "c2"]),
        ("operation_late", "联合执法迟到报到", "B", 1, ["c1", "c2"]),
    ]
    assert rows[0]["operations"] == [{
        "operation_id": "op1", "at": t(11, 10, 12).isoformat(), "lead_unit": "A",
        "starts_at": t(11, 10, 9).isoformat(), "ends_at": t(11, 10, 11).isoformat(), "cases": ["c1", "c2"],
    }]  # fmt: skip
