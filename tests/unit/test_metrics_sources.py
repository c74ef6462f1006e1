"""Metrics of the approval and alarm sources and invalid reports (pure), with the arithmetic by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.metrics.fact_counts import fact_counts, unit_counts
from services.metrics.facts import CaseFact, reduce_events
from services.metrics.periods import TZ
from services.metrics.source_indicators import (
    auto_recovered_counts,
    device_rates,
    reporter_rates,
    supervision_rates,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
H = timedelta(hours=1)


def case(case_id: str, *steps: tuple[str, int, dict[str, Any]], **common: Any) -> CaseFact:
    """A case's fact from (type, hour, data) steps, every event carrying ``common``."""
    events = [
        {"event_id": f"{case_id}-{i}", "case_id": case_id, "type": t, "occurred_at": T0 + hour * H, "version": i + 2,
         "data": {**common, **data}}
        for i, (t, hour, data) in enumerate(steps)
    ]
    return reduce_events(events)


def dispatched(case_id: str, *more: tuple[str, int, dict[str, Any]], **common: Any) -> CaseFact:
    base = {"unit": "U1", "township": "T1", "deadline": T0 + 48 * H, "state": "dispatched"}
    return case(case_id, ("case.dispatched", 0, {}), *more, **{**base, **common})


def test_invalid_auto_recovered_and_inspection_leave_the_unit_indicators() -> None:
    valid = dispatched("c1", ("case.accepted", 1, {}), ("case.resolved", 5, {}), source="gridworker", reporter_id="W")
    invalid = dispatched("c2", ("case.invalidated", 1, {"invalid_reason": "not_a_problem"}), source="gridworker",
                         reporter_id="W")
    recovered = dispatched("c3", ("case.auto_recovered", 1, {}), source="alarm", device_id="D1")
    task = dispatched("c4", ("case.accepted", 1, {}), ("case.inspected", 3, {"inspection_result": "rectify"}),
                      source="approval", kind="inspection")
    assert invalid.invalid and invalid.closed_at == T0 + H and recovered.auto_recovered and task.kind == "inspection"
    as_of = T0 + 100 * H
    assert fact_counts(invalid, as_of)["dispatched"] == 0
    assert fact_counts(recovered, as_of)["dispatched"] == 0
    assert fact_counts(task, as_of)["dispatched"] == 0
    # only c1 counts for U1: dispatched 1, resolved 1
    totals = unit_counts([valid, invalid, recovered, task], as_of)[("U1", "T1")]
    assert (totals["dispatched"], totals["resolved"]) == (1, 1)


def test_reporter_rates_by_hand() -> None:
    # W: 4 reports — 1 invalid, 1 self-handled → 有效上报率 (4 − 1) ÷ 4 = 0.75, 自处置率 1 ÷ 4 = 0.25
    # V: 1 report, invalid → 0 ÷ 1 = 0.0
    facts = [
        dispatched("a", source="gridworker", reporter_id="W"),
        dispatched("b", source="gridworker", reporter_id="W"),
        dispatched("c", ("case.invalidated", 1, {"invalid_reason": "insufficient"}), source="gridworker",
                   reporter_id="W"),
        case("d", ("case.self_handled", 0, {}), source="gridworker", reporter_id="W", township="T1"),
        dispatched("e", ("case.invalidated", 1, {"invalid_reason": "duplicate_elsewhere"}), source="gridworker",
                   reporter_id="V"),
        dispatched("f", source="12345"),  # not a grid worker's
    ]
    rows = {r["reporter_id"]: r for r in reporter_rates(facts)}
    assert set(rows) == {"V", "W"}
    assert (rows["W"]["reports"], rows["W"]["valid_rate"], rows["W"]["self_handled_rate"]) == (4, 0.75, 0.25)
    assert (rows["V"]["valid_rate"], rows["V"]["self_handled_rate"]) == (0.0, 0.0)


def test_device_false_alarm_rate_by_hand() -> None:
    # D1: 4 cases (20 + 1 + 1 + 1 = 23 alarms); 误报 twice (one flagged, one invalid as false_alarm) → 2 ÷ 4 = 0.5
    facts = [
        dispatched("a", ("case.occurrence_added", 1, {"occurrences": 20}), source="alarm", device_id="D1"),
        dispatched("b", ("case.false_alarm", 1, {}), source="alarm", device_id="D1"),
        dispatched("c", ("case.invalidated", 1, {"invalid_reason": "false_alarm"}), source="alarm", device_id="D1"),
        dispatched("d", ("case.auto_recovered", 1, {}), source="alarm", device_id="D1"),
    ]
    [row] = device_rates(facts)
    assert (row["cases"], row["alarms"], row["false_alarms"], row["false_alarm_rate"]) == (4, 23, 2, 0.5)
    assert row["auto_recovered"] == 1
    assert auto_recovered_counts(facts) == [{"unit": "U1", "township": "T1", "auto_recovered": 1}]


def test_supervision_rates_by_hand() -> None:
    # U1's tasks (deadline 48 h): a checked at 10 h (on time, compliant), b checked at 60 h (late, rectify),
    # c open and due (past 48 h), d open not due (deadline 200 h), e revoked (out).
    # due = a, b, c = 3; on time = a = 1 → 按期检查率 1 ÷ 3 = 0.3333; 整改率 = rectify ÷ checked = 1 ÷ 2 = 0.5
    kind = {"kind": "inspection", "source": "approval"}
    facts = [
        dispatched("a", ("case.inspected", 10, {"inspection_result": "compliant"}), **kind),
        dispatched("b", ("case.inspected", 60, {"inspection_result": "rectify"}), **kind),
        dispatched("c", **kind),
        dispatched("d", **{**kind, "deadline": T0 + 200 * H}),
        dispatched("e", ("case.revoked", 2, {}), **kind),
    ]
    [row] = supervision_rates(facts, T0 + 100 * H)
    assert (row["tasks"], row["due"], row["checked"], row["checked_on_time"]) == (4, 3, 2, 1)
    assert (row["checked_on_time_rate"], row["rectify_rate"]) == (0.3333, 0.5)
