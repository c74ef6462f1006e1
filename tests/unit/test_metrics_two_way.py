"""Two-way assessment 双向考核 (pure): townships score county departments on 报到 (whistled cases
answered in time, solved, solved in time), departments score the township's units on devolved
matters only. The hand arithmetic is written beside each figure.

The scenario is one function that emits events, so the broker test
(``tests/integration/test_metrics_two_way.py``) publishes the very same cases.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.metrics.fact_counts import unit_counts
from services.metrics.facts import CaseFact, reduce_events
from services.metrics.periods import TZ, parse_period
from services.metrics.populations import in_population
from services.metrics.scoring import AssessmentScheme, IndicatorRow, load_schemes, score_units
from tests.unit.test_metrics_rules import PRESETS

OCTOBER = parse_period("2026-10")
AS_OF = OCTOBER.end  # 2026-11-01 00:00

#: (case name, event type, time, fields): one event of the scenario.
Emit = Callable[[str, str, datetime, dict[str, Any]], None]
KINDS: dict[str, str | None] = {"U1": "enforcement_team", "GA": "county_department"}


def bj(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=TZ)


def two_way_scenario(emit: Emit) -> None:
    """October 2026. T1 whistles four cases to the county department GA, T2 three; GA also holds one
    case dispatched to it directly (not a whistle). U1 (T1's enforcement team) handles three devolved
    cases and two that are not devolved. Deadlines: 3 days after dispatch; 报到 by 17:00 the day of the
    whistle. 期限为派遣后 3 天；报到时限为吹哨当日 17:00。"""

    def dispatched(name: str, unit: str, township: str, day: int, devolved: bool | None) -> None:
        at = bj(day)
        emit(name, "case.dispatched", at, {
            "unit": unit, "township": township, "source": "12345", "matter": "占道经营", "urgency": "normal",
            "time_basis": "natural", "reported_at": at - timedelta(hours=1), "deadline": at + timedelta(days=3),
            "devolved": devolved,
        })  # fmt: skip

    def whistled(name: str, township: str, day: int, report_hour: int | None, resolved_after_days: int | None) -> None:
        dispatched(name, "U1", township, day, None)
        emit(name, "case.escalated", bj(day, 10), {
            "unit": "GA", "department": "GA", "details": {"report_deadline": bj(day, 17).isoformat()},
        })  # fmt: skip
        if report_hour is not None:
            emit(name, "case.reported_in", bj(day, 0) + timedelta(hours=report_hour), {})
        if resolved_after_days is not None:
            done(name, bj(day) + timedelta(days=resolved_after_days))

    def done(name: str, at: datetime) -> None:
        emit(name, "case.resolved", at, {"state": "resolved"})
        emit(name, "case.verified", at + timedelta(hours=1), {"state": "closed", "verification_passed": True})

    # T1 → GA: w1 报到 11:00, solved D+1; w2 报到 11:00, solved D+5 (late); w3 报到 next day 09:00 (late),
    # open past its deadline; w4 报到 12:00, solved D+2.
    whistled("w1", "T1", 5, 11, 1)
    whistled("w2", "T1", 6, 11, 5)
    whistled("w3", "T1", 7, 33, None)
    whistled("w4", "T1", 8, 12, 2)
    # T2 → GA: v1 报到 11:00, solved D+1; v2 never 报到, open; v3 报到 16:00, solved D+1.
    whistled("v1", "T2", 12, 11, 1)
    whistled("v2", "T2", 13, None, None)
    whistled("v3", "T2", 14, 16, 1)
    # GA's own case (not a whistle): late and open, must not count in the 报到 scheme.
    dispatched("g1", "GA", "T1", 15, None)
    # U1, devolved: d1 on time; d2 late (D+5); d3 reworked, on time (D+2).
    dispatched("d1", "U1", "T1", 19, True)
    done("d1", bj(20))
    dispatched("d2", "U1", "T1", 20, True)
    done("d2", bj(25))
    dispatched("d3", "U1", "T1", 21, True)
    emit("d3", "case.resolved", bj(22), {"state": "resolved"})
    emit("d3", "case.verified", bj(22, 11), {"state": "reopened", "verification_passed": False})
    done("d3", bj(23))
    # U1, not devolved (not the township's function): both open past their deadline.
    dispatched("n1", "U1", "T1", 19, False)
    dispatched("n2", "U1", "T1", 20, False)


def scenario_facts() -> list[CaseFact]:
    events: dict[str, list[dict[str, Any]]] = {}

    def emit(name: str, type_: str, at: datetime, fields: dict[str, Any]) -> None:
        case = events.setdefault(name, [])
        case_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"two-way/{name}"))
        data = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in fields.items()}
        if "unit" in data:
            data["unit_kind"] = KINDS.get(data["unit"])
        version = len(case) + 2
        case.append({"event_id": f"{case_id}-{version}", "case_id": case_id, "type": type_, "occurred_at": at,
                     "version": version, "data": data})  # fmt: skip

    two_way_scenario(emit)
    return [reduce_events(e) for e in events.values()]


@pytest.fixture(scope="module")
def schemes() -> dict[str, AssessmentScheme]:
    return load_schemes(PRESETS)


def rows_for(scheme: AssessmentScheme, facts: list[CaseFact]) -> list[IndicatorRow]:
    counts = unit_counts([f for f in facts if in_population(f, scheme.population)], AS_OF)
    return [
        IndicatorRow(unit=unit, unit_kind=KINDS[unit], township=township or "*", counts=c)  # type: ignore[arg-type]
        for (unit, township), c in sorted(counts.items())
    ]


def test_departments_scored_on_report_in_by_each_township(schemes: dict[str, AssessmentScheme]) -> None:
    scheme = schemes["department_report_in"]
    assert (scheme.population, scheme.per_township, scheme.unit_kinds) == ("whistled", True, ["county_department"])
    scored = {(r.unit, r.township): r for r in score_units(rows_for(scheme, scenario_facts()), scheme)}
    assert set(scored) == {("GA", "T1"), ("GA", "T2")}  # U1 is not a department; g1 is no whistle
    t1, t2 = scored[("GA", "T1")], scored[("GA", "T2")]
    # T1: 4 whistles; 报到 in time w1, w2, w4 = 3; solved w1, w2, w4 = 3; in time w1, w4 = 2
    # 按时报到率 3/4 × 40 = 30; 办结率 3/4 × 30 = 22.5; 按期办结率 2/4 × 30 = 15 → 67.5 C
    assert t1.cases == 4
    assert (t1.parts["report_in_rate"], t1.parts["resolution_rate"], t1.parts["ontime_resolution_rate"]) == (
        30.0, 22.5, 15.0,
    )  # fmt: skip
    assert (t1.score, t1.grade) == (67.5, "C")
    # T2: 3 whistles; 报到 in time v1, v3 = 2; solved v1, v3 = 2, both in time
    # 2/3 × 40 = 26.667; 2/3 × 30 = 20; 2/3 × 30 = 20 → 66.67 C
    assert (t2.cases, t2.score, t2.grade) == (3, 66.67, "C")
    assert (t1.rank_in_kind, t2.rank_in_kind) == (1, 2)


def test_township_units_scored_on_devolved_matters_only(schemes: dict[str, AssessmentScheme]) -> None:
    scheme = schemes["township_devolved"]
    assert (scheme.population, scheme.unit_kinds) == ("devolved", ["township_office", "enforcement_team"])
    facts = scenario_facts()
    [u1] = score_units(rows_for(scheme, facts), scheme)
    # U1 devolved: d1, d2, d3 → 派遣 3, 办结 3, 按期 d1 + d3 = 2, 超期 d2 = 1, 返工 d3 = 1 (of 3 办结)
    # 办结率 3/3 × 30 = 30; 按期 2/3 × 30 = 20; (1 − 1/3) × 20 = 13.333; (1 − 1/3) × 20 = 13.333 → 76.67 B
    assert (u1.unit, u1.cases, u1.score, u1.grade) == ("U1", 3, 76.67, "B")
    # n1, n2 (not devolved, open past their deadline) would have cost U1: over all 5 cases
    # 3/5 × 30 = 18; 2/5 × 30 = 12; (1 − 1/3) × 20 = 13.333; (1 − 3/5) × 20 = 8 → 51.33
    everything = scheme.model_copy(update={"population": "all"})
    [all_cases] = score_units(rows_for(everything, facts), everything)
    assert (all_cases.cases, all_cases.score) == (5, 51.33)
    # and the whistled cases U1 first received count for GA, never for U1 (the holder counts)
    assert all(f.unit == "GA" for f in facts if f.escalated_to == "GA")


def test_population_defaults_and_validation() -> None:
    schemes = load_schemes(PRESETS)
    assert (schemes["cityops_professional"].population, schemes["cityops_professional"].per_township) == ("all", False)
    assert schemes["stationed_agency_township_led"].per_township  # township-led is always per township
    body = {**schemes["township_devolved"].model_dump(mode="json"), "population": "everything"}
    with pytest.raises(ValueError, match="population"):
        AssessmentScheme.model_validate(body)
