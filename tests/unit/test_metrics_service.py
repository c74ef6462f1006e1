"""Pure parts of the metrics service: the reducer on ``CaseEvent``-shaped data, durations,
the grid units parser, revision diffs, exports and Prometheus labels. 纯逻辑单元测试。"""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from prometheus_client import CollectorRegistry

from services.metrics.exports import score_table, to_csv, to_xlsx
from services.metrics.facts import reduce_events
from services.metrics.periods import TZ
from services.metrics.scoring import IndicatorRow, load_schemes, score_units
from services.metrics.signoff import diff_rows
from services.metrics.telemetry import MetricsTelemetry
from services.metrics.units import parse_units
from services.metrics.worktime import SqlWorkingTime, durations, known_year_range
from shared.calendar import load_calendar
from shared.events import ActorRef, CaseEvent
from tests.unit.test_metrics_rules import PRESETS

CALENDAR = load_calendar()


def bj(month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


class Flat:
    """Events shaped like ``shared.events.CaseEvent`` (as dispatch publishes them)."""

    def __init__(self) -> None:
        self.case_id = uuid.uuid4()
        self.events: list[dict[str, Any]] = []
        self.cur: dict[str, Any] = {"township": "T1", "source": "cityops", "time_basis": "natural"}

    def add(self, type_: str, at: datetime, **fields: Any) -> Flat:
        for key in ("unit", "unit_kind", "deadline", "accept_deadline", "cohandlers", "township"):
            if key in fields:
                self.cur[key] = fields.pop(key)
        version = len(self.events) + 2
        payload = CaseEvent(
            case_id=self.case_id,
            version=version,
            occurred_at=at,
            actor=ActorRef(role="dispatcher"),
            state="x",
            **self.cur,
            **fields,
        )
        self.events.append(
            {
                "event_id": str(uuid.uuid4()),
                "case_id": str(self.case_id),
                "type": type_,
                "occurred_at": at,
                "version": version,
                "data": payload.model_dump(mode="json"),
            }
        )
        return self


def test_cohandler_list_does_not_make_the_primary_a_cohandler() -> None:
    case = Flat().add("case.dispatched", bj(11, 2), unit="A", unit_kind="township_office")
    case.add("case.cohandler_added", bj(11, 2, 10), cohandlers=["X"])
    case.add("case.cohandler_added", bj(11, 2, 11), cohandlers=["X", "Y"])
    fact = reduce_events(case.events)
    assert (fact.unit, fact.cohandlers) == ("A", ["X", "Y"])


def test_cohandler_event_as_dispatch_publishes_it() -> None:
    """dispatch's ``case.cohandler_added``: ``unit`` is the co-handler, ``cohandlers`` the list after."""
    case = Flat().add("case.dispatched", bj(11, 2), unit="A", unit_kind="township_office")
    case.add("case.cohandler_added", bj(11, 2, 10), unit="X", unit_kind=None, cohandlers=["X"])
    case.add("case.accepted", bj(11, 2, 11), unit="A", unit_kind="township_office")
    fact = reduce_events(case.events)
    assert (fact.unit, fact.unit_kind, fact.cohandlers, fact.accepted_at) == (
        "A",
        "township_office",
        ["X"],
        bj(11, 2, 11),
    )


def test_invalid_rejection_ruled_after_redispatch_keeps_the_new_holder() -> None:
    case = Flat().add("case.dispatched", bj(11, 2), unit="A", unit_kind="township_office")
    case.add("case.rejected", bj(11, 2, 10), unit=None, rejected_unit="A")
    case.add("case.dispatched", bj(11, 2, 11), unit="B", unit_kind="enforcement_team")
    case.add("case.rejection_ruled", bj(11, 2, 12), rejected_unit="A", rejection_valid=False)
    fact = reduce_events(case.events)
    # dispatch left the case with B: the ruling records A's invalid rejection but does not move the case
    assert (fact.unit, fact.unit_kind, fact.units_rejected_invalidly) == ("B", "enforcement_team", ["A"])
    # ruled before any re-dispatch (primary unit empty): the case is A's after all and counts against A
    early = Flat().add("case.dispatched", bj(11, 2), unit="A", unit_kind="township_office")
    early.add("case.rejected", bj(11, 2, 10), unit=None, rejected_unit="A")
    early.add("case.rejection_ruled", bj(11, 2, 12), rejected_unit="A", rejection_valid=False)
    fact = reduce_events(early.events)
    assert (fact.unit, fact.rejections, fact.units_rejected_invalidly) == ("A", 1, ["A"])


def test_unit_kind_filled_from_a_later_event_and_escalation_deadline_from_details() -> None:
    case = Flat().add("case.dispatched", bj(11, 2), unit="A")  # no kind yet
    case.add("case.accepted", bj(11, 2, 10), unit_kind="township_office")
    assert reduce_events(case.events).unit_kind == "township_office"
    case.add(
        "case.escalated", bj(11, 3), department="county-housing", details={"report_deadline": bj(11, 4).isoformat()}
    )
    case.add("case.reported_in", bj(11, 3, 15))
    fact = reduce_events(case.events)
    # the flat events keep saying unit A (dispatch's primary unit); the department now holds the case
    assert (fact.unit, fact.unit_kind, fact.accept_deadline, fact.accepted_at) == (
        "county-housing",
        "county_department",
        bj(11, 4),
        bj(11, 3, 15),
    )


def test_durations_across_the_make_up_saturday() -> None:
    d = durations(
        CALENDAR,
        reported_at=bj(10, 9, 15),
        dispatched_at=bj(10, 9, 16),
        resolved_at=bj(10, 12, 10),
        closed_at=bj(10, 12, 11),
    )
    # Fri 16:00–17:30 (1.5) + Sat 10-10 调休上班 (7.5) + Sun (0) + Mon 08:30–10:00 (1.5)
    assert (d.handling_natural_h, d.handling_working_h) == (66.0, pytest.approx(10.5))
    assert (d.closing_natural_h, d.closing_working_h, d.provisional) == (68.0, pytest.approx(12.5), False)
    open_case = durations(CALENDAR, reported_at=bj(10, 9), dispatched_at=bj(10, 9), resolved_at=None, closed_at=None)
    assert (open_case.handling_working_h, open_case.closing_natural_h) == (None, None)


def test_durations_in_an_unknown_year_are_provisional_never_an_error() -> None:
    lo, hi = known_year_range()
    start = datetime(hi + 1, 3, 2, 9, tzinfo=TZ)  # a year the library has not published yet
    d = durations(
        CALENDAR, reported_at=start, dispatched_at=start, resolved_at=start + timedelta(days=1), closed_at=None
    )
    assert d.provisional and d.handling_working_h == pytest.approx(7.5)  # weekday fallback
    sql = SqlWorkingTime.build(CALENDAR, 2026, 2026)
    assert len(sql.cum) == 366 and sql.cum[-1] == 248 * 450  # 2026: 248 working days of 450 minutes
    assert lo <= 2026 <= hi


def test_parse_units_tolerates_shapes() -> None:
    assert parse_units([{"id": "u1", "name": "甲", "kind": "township_office", "township_code": "T1"}]) == [
        {
            "unit_id": "u1",
            "name": "甲",
            "kind": "township_office",
            "township_code": "T1",
            "department": None,
            "covers": [],
        }
    ]
    wrapped = parse_units(
        {"items": [{"unit_id": "u2", "unit_kind": "stationed_agency", "covers": ["T1", 3]}, {"x": 1}]}
    )
    assert [(u["unit_id"], u["kind"], u["covers"]) for u in wrapped] == [("u2", "stationed_agency", ["T1"])]
    assert parse_units({"detail": "nope"}) == [] and parse_units("html") == []


def test_diff_rows_names_every_changed_figure() -> None:
    before = [
        {"unit": "A", "township": "T1", "score": 82.14, "grade": "B", "rates": {"resolution_rate": 0.875}},
        {"unit": "B", "township": "T1", "score": 90.0, "grade": "A", "rates": {}},
    ]
    after = [
        {"unit": "A", "township": "T1", "score": 86.25, "grade": "B", "rates": {"resolution_rate": 1.0}},
        {"unit": "C", "township": "T2", "score": 70.0, "grade": "C", "rates": {}},
    ]
    changes = diff_rows("s", before, after)
    assert {
        "scheme": "s",
        "unit": "A",
        "township": "T1",
        "field": "score",
        "published": 82.14,
        "revised": 86.25,
    } in changes
    assert any(c["field"] == "rates.resolution_rate" and c["revised"] == 1.0 for c in changes)
    rows = {(c["unit"], c["field"]): c for c in changes}
    assert (rows[("B", "row")]["revised"], rows[("C", "row")]["published"]) == (False, False)
    assert diff_rows("s", before, before) == []


def test_exports_open_with_chinese_headers() -> None:
    schemes = load_schemes(PRESETS)
    scheme = schemes["stationed_agency_township_led"]
    counts = {
        "dispatched": 6,
        "resolved": 6,
        "resolved_on_time": 5,
        "responded_in_time": 6,
        "callbacks_valid": 6,
        "satisfied": 6,
    }
    rows = [
        r.model_dump(mode="json")
        for r in score_units(
            [
                IndicatorRow(
                    unit="PCS-1", unit_kind="stationed_agency", township="T1", counts=counts, unit_name="派出所"
                )
            ],
            scheme,
            {("T1", "PCS-1"): 90.0},
        )
    ]
    table = score_table(
        scheme=scheme, period_id="2026-10", as_of="2026-11-01T00:00:00+08:00", rows=rows, signed_off=None
    )
    assert "乡镇评价（得分）" in table.headers and "乡镇评价（0–100）" in table.headers
    text_ = to_csv(table).decode("utf-8-sig")
    assert text_.splitlines()[0].startswith("乡镇,单位编码,单位名称,单位类型,派遣案件数,状态,得分,等级")
    assert "派出所,派驻机构,6,已评分" in text_
    wb = load_workbook(io.BytesIO(to_xlsx(table)))
    ws = wb["考核结果"]
    assert ws["A2"].value.startswith("统计截至 2026-11-01T00:00:00+08:00；未签发")
    assert [c.value for c in ws[5]][:4] == ["T1", "PCS-1", "派出所", "派驻机构"]
    info = {r[0]: r[1] for r in wb["方案说明"].iter_rows(values_only=True) if r and r[0]}
    assert (info["乡镇评价"], info["合计"]) == (50, 100)


def test_prometheus_labels_stay_bounded() -> None:
    telemetry = MetricsTelemetry(CollectorRegistry())
    assert telemetry.source_label("12345") == "12345" and telemetry.source_label("<script>") == "unknown"
    assert telemetry.kind_label("grid_worker") == "unknown" and telemetry.type_label("case.foo") == "other"
