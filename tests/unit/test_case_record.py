"""The one declaration of a case's fields, and the deadline rules (pure). 案件字段声明与时限规则。"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.dispatch.case_model import Actor, CaseSnapshot, Role
from services.dispatch.deadlines import (
    EXTENSION_CAP_WORKING_DAYS,
    accept_deadline,
    deadline_facts,
    extension_refusal,
    matter_deadline,
    reject_window_ends,
    report_in_deadline,
    time_basis_for,
)
from services.dispatch.lifecycle import can_see
from services.dispatch.models import cases
from services.dispatch.records import CASE_FIELDS, CaseRecord
from shared.calendar import load_calendar
from shared.events import CaseEvent
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot
from shared.visibility import Viewer, sees_case

ROOT = Path(__file__).resolve().parents[2]
DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)  # a Tuesday 周二


def record() -> CaseRecord:
    case_id = uuid.uuid4()
    snapshot = CaseSnapshot(id=str(case_id), township="330127101", source="12345", reported_at=NOW, matter="SR001")
    return CaseRecord(
        id=case_id,
        incident_id=uuid.uuid4(),
        source="12345",
        source_id="T-1",
        snapshot=snapshot,
        urgency="normal",
        incident={},
        explanation={"explanation_zh": "说明"},
        unit_kind="enforcement_team",
        seq=7,
    )


def test_the_row_is_every_writable_column() -> None:
    written = [c.name for c in cases.columns if c.name not in ("seq", "created_at", "updated_at")]
    row = record().to_row()
    assert sorted(row) == sorted(written)
    assert row["township"] == "330127101" and row["state"] == "reported" and row["cohandlers"] == []


def test_from_row_reads_back_what_to_row_wrote() -> None:
    original = record()
    again = CaseRecord.from_row({**original.to_row(), "seq": original.seq})
    assert again == original


def test_event_fields_are_case_event_fields() -> None:
    r = record()
    fields = r.event_fields()
    assert set(fields) <= set(CaseEvent.model_fields)
    assert fields["case_id"] == r.id and "id" not in fields
    assert fields["unit_kind"] is None  # no primary unit yet 尚无主办单位
    assert "village" not in fields and "escalated_to" not in fields


def test_api_fields_are_json_ready_in_column_order() -> None:
    r = record()
    shown = r.api_fields()
    assert shown["id"] == str(r.id) and shown["reported_at"] == NOW.isoformat()
    columns = [c.name for c in cases.columns]
    assert list(shown) == sorted(shown, key=columns.index)
    assert not {"lng", "lat", "phone_hash", "escalated_to", "explanation", "incident"} & set(shown)
    assert len({f.name for f in CASE_FIELDS}) == len(CASE_FIELDS)


# --------------------------------------------------------------------------- deadlines 时限


def test_critical_runs_on_natural_time() -> None:
    assert time_basis_for("critical", "working") == "natural"
    assert time_basis_for("urgent", "working") == "working"
    assert time_basis_for("normal", "natural") == "natural"


def test_windows_and_report_in() -> None:
    cal = load_calendar(county="330127")
    assert accept_deadline(cal, NOW, None) == cal.add_working_days(NOW, 1)
    soon = NOW + timedelta(hours=2)
    assert accept_deadline(cal, NOW, soon) == soon  # never after the 办结期限
    assert reject_window_ends(cal, NOW) == cal.add_working_days(NOW, 2)
    assert report_in_deadline(cal, NOW) == cal.add_working_days(NOW, 1)
    facts = deadline_facts(cal, NOW, 1.0, "natural")
    assert (facts.due_at, facts.accept) == (NOW + timedelta(hours=1), NOW + timedelta(hours=1))


def test_matter_deadline() -> None:
    snapshot = JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=1, rules_version=1)
    cal = load_calendar(county=snapshot.county_code)
    matter = snapshot.matter("SR001")
    assert matter is not None
    due, basis, _ = matter_deadline(cal, matter, "critical", NOW)
    assert basis == "natural" and due == NOW + timedelta(hours=matter.deadlines.critical)
    assert matter_deadline(cal, None, "normal", NOW) == (None, None, False)


# --------------------------------------------------------------------------- visibility 可见范围


def test_can_see_is_the_shared_rule() -> None:
    case = record().snapshot  # 青溪镇, no unit yet 尚未派遣
    answers = {
        Actor(Role.ADMIN): True,
        Actor(Role.HOTLINE): True,
        Actor(Role.DISPATCHER, township="330127101"): True,
        Actor(Role.DISPATCHER, township="330127001"): False,
        Actor(Role.TOWNSHIP_ADMIN, township="*"): True,
        Actor(Role.DISPATCHER): False,
        Actor(Role.UNIT, unit="330127101-zfd"): False,
        Actor(Role.UNIT): False,
    }
    for actor, expected in answers.items():
        assert can_see(case, actor) is expected, actor
        assert sees_case(Viewer.of(actor), township=case.township, unit=case.primary_unit) is expected


def test_an_extension_reaches_at_most_ten_working_days_past_the_deadline() -> None:
    calendar = load_calendar()
    deadline = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # Tue 10:00 Beijing
    # 10 working days: Wed 11 … Fri 13 (3), Mon 16 … Fri 20 (8), Mon 23, Tue 24 (10) → 03-24 10:00 Beijing.
    cap = datetime(2026, 3, 24, 2, 0, tzinfo=UTC)
    assert EXTENSION_CAP_WORKING_DAYS == 10
    assert extension_refusal(calendar, deadline, cap) is None
    refusal = extension_refusal(calendar, deadline, cap + timedelta(minutes=1))
    assert refusal is not None and "10 个工作日" in refusal and "2026-03-24T10:00" in refusal


def test_every_event_of_an_imported_case_is_staged_for_the_bulk_lane() -> None:
    """A case keeps the lane it came in: its creation's and later actions' events alike go on its
    lane's topic (so its events keep their order). 案件事件一律走其通道。"""
    from services.dispatch.staging import Pending, stage

    def staged(lane: str) -> Pending:
        r = record()
        r.lane = lane
        pending = Pending()
        for event_type in ("case.triage_required", "case.assigned"):
            stage(pending, r, event_type=event_type, action=None, actor=Actor(Role.SYSTEM, id="test"), at=NOW,
                  previous_state=None, body={}, changes={}, note=None, extra=None, correlation_id="c")  # fmt: skip
        return pending

    live, bulk = staged("live"), staged("bulk")
    assert (len(live.events), len(live.bulk_events)) == (2, 0)
    assert (len(bulk.events), len(bulk.bulk_events)) == (0, 2)
    assert len(bulk.rows) == 2
