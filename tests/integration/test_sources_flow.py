"""审批办件 and 监测告警 through the running platform: intake → broker → dispatch, real PostgreSQL and Tansu.

* approval → supervision task (kind inspection, 监管时限) → 责令整改 → linked follow-up check → 合格;
  不予许可 creates nothing; 撤销 closes the open task;
* an alarm burst of 20 → one case with 20 occurrences (counted once each, no second dispatch);
* cleared before accepted → 自动恢复; low confidence → 复核 (triage); 误报 marking;
* 不予立案 by a dispatcher on a dispatched, not yet accepted report.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.calendar import WorkingCalendar
from shared.embedded import TansuBroker
from tests.helpers import eventually
from tests.integration.test_dispatch_support import (
    ADMIN,
    DISPATCHER,
    KEYS,
    Stack,
    platform,
    record,
    unit,
)

STAFF_UNIT = "pz-scjgs-qingxi"  # 青溪市场监管所 covers 枫林镇: 食品经营 supervision there


@pytest.fixture(scope="module")
async def stack(database_url: str, module_broker: TansuBroker) -> AsyncIterator[Stack]:
    async with platform(database_url, module_broker.bootstrap) as s:
        yield s


async def act(stack: Stack, case: dict[str, Any], action: str, headers: dict[str, str], **body: Any) -> Any:
    body.setdefault("expected_version", case["version"])
    response = await stack.dispatch.post(f"/v1/cases/{case['id']}/actions/{action}", json=body, headers=headers)
    assert response.status_code == 200, (action, response.text)
    return response.json()["case"]


async def until(stack: Stack, case_id: str, test: Any, timeout_s: float = 30.0) -> dict[str, Any]:
    """The case once ``test(case)`` holds. 等待案件满足条件。"""

    async def check() -> dict[str, Any] | None:
        response = await stack.dispatch.get(f"/v1/cases/{case_id}", headers=ADMIN)
        if response.status_code != 200:
            return None
        case: dict[str, Any] = response.json()
        return case if test(case) else None

    found: dict[str, Any] = await eventually(check, timeout_s=timeout_s, every_s=0.2)
    return found


# --------------------------------------------------------------------------- 审批办件 → 监管任务


async def test_approval_becomes_a_task_and_rectify_creates_a_linked_follow_up(stack: Stack) -> None:
    body = record("approval", example_spot=True)
    task = await stack.case_of(await stack.post("approval", body))
    assert task["kind"] == "inspection" and task["state"] == "dispatched" and task["matter"] == "JG001"
    assert task["unit"] == STAFF_UNIT  # not devolved in 枫林镇: the stationed 市场监管所
    # 监管时限: 10 working days (the approval's own supervise_within_days) after approval (11-24 15:30);
    # were that already past on arrival, 10 working days after arrival
    approved = datetime.fromisoformat(body["approved_at"])
    due = WorkingCalendar().deadline_in_working_days(approved, 10).due_at
    if due <= datetime.now(UTC):
        assert datetime.fromisoformat(task["deadline"]) > datetime.now(UTC)  # counted from arrival
    else:
        assert datetime.fromisoformat(task["deadline"]) == due
    task = await act(stack, task, "accept", unit(STAFF_UNIT))
    task = await act(stack, task, "record_inspection", unit(STAFF_UNIT), result="rectify", note="后厨排烟设施未改造",
                     follow_up_within_days=5)
    assert task["state"] == "closed" and task["inspection_result"] == "rectify" and task["follow_up_case"]
    follow = await stack.case_of_id(task["follow_up_case"])
    assert follow["follow_up_of"] == task["id"] and follow["kind"] == "inspection"
    assert follow["unit"] == STAFF_UNIT and follow["state"] == "dispatched" and follow["deadline"]
    follow = await act(stack, follow, "accept", unit(STAFF_UNIT))
    follow = await act(stack, follow, "record_inspection", unit(STAFF_UNIT), result="compliant", note="已整改到位")
    assert follow["state"] == "closed" and follow["inspection_result"] == "compliant"


async def test_case_opened_stores_the_enforcement_number_and_an_incident_cannot_record_one(stack: Stack) -> None:
    task = await stack.case_of(await stack.post("approval", record("approval", example_spot=True)))
    task = await act(stack, task, "accept", unit(STAFF_UNIT))
    missing = await stack.dispatch.post(
        f"/v1/cases/{task['id']}/actions/record_inspection",
        json={"expected_version": task["version"], "result": "case_opened", "note": "无证经营"},
        headers=unit(STAFF_UNIT),
    )
    assert missing.status_code == 422
    task = await act(stack, task, "record_inspection", unit(STAFF_UNIT), result="case_opened", note="超范围经营",
                     enforcement_case_no="青市监立〔2026〕88号")
    assert task["enforcement_case_no"] == "青市监立〔2026〕88号" and task["follow_up_case"] is None


async def test_denied_creates_nothing_and_revoked_closes_the_open_task(stack: Stack) -> None:
    applicant = {"kind": "org", "name": "枫林镇某某小吃店", "credit_code": "92330127MA2H3K4X9Q"}
    denied = record("approval", example_spot=True, result="denied", applicant=applicant)
    approved = record("approval", example_spot=True, applicant=applicant)
    task = await stack.case_of(await stack.post("approval", approved))
    denied_id = await stack.post("approval", denied)
    revoked = record("approval", example_spot=True, result="revoked", applicant=applicant)
    await stack.post("approval", revoked)
    closed = await until(stack, task["id"], lambda c: c["state"] == "closed")
    assert closed["close_reason"] == "撤销"
    # the denied one was consumed before the revocation (same partition or not: it never gets a case)
    rows = await stack.sql("SELECT count(*) FROM dispatch.cases WHERE incident_id = :i", i=denied_id)
    assert rows[0][0] == 0


# --------------------------------------------------------------------------- 监测告警


def alarm(device: str, minute: int, **changes: Any) -> dict[str, Any]:
    raised = datetime.fromisoformat("2026-11-24T09:00:00+08:00") + timedelta(minutes=minute)
    return record("alarm", example_spot=True, device_id=device, raised_at=raised.isoformat(), **changes)


async def test_a_burst_of_20_is_one_case_with_20_occurrences(stack: Stack) -> None:
    device = f"CAM-{uuid.uuid4().hex[:6]}"
    burst = [alarm(device, minute) for minute in range(20)]  # one a minute: each within 30 min of the last
    response = await stack.intake.post("/v1/events/alarm/batch", json={"events": burst[:12]},
                                       headers={"X-API-Key": KEYS["alarm"]})
    assert response.json()["accepted"] == 12
    for body in burst[12:]:
        await stack.post("alarm", body)
    # the alarms travel on several partitions (keyed by their own ids): any of them may open the case

    async def counted() -> Any:
        rows = await stack.sql("SELECT id, occurrences FROM dispatch.cases WHERE device_id = :d", d=device)
        return rows if rows and sum(r[1] for r in rows) == 20 else None

    [(case_id, occurrences)] = await eventually(counted, timeout_s=60, every_s=0.3)
    case = await stack.case_of_id(str(case_id))
    assert occurrences == case["occurrences"] == 20
    rows = await stack.sql("SELECT count(*), count(DISTINCT case_id) FROM dispatch.alarm_occurrences o "
                           "JOIN dispatch.cases c ON c.id = o.case_id WHERE c.device_id = :d", d=device)
    assert tuple(rows[0]) == (20, 1)
    cases = await stack.sql("SELECT count(*) FROM dispatch.cases WHERE device_id = :d", d=device)
    assert cases[0][0] == 1  # no second case, no second dispatch
    dispatched = await stack.sql(
        "SELECT count(*) FROM dispatch.case_transitions WHERE case_id = :c AND event_type = 'case.dispatched'",
        c=uuid.UUID(case["id"]),
    )
    assert dispatched[0][0] == 1


async def test_cleared_before_accepted_closes_as_auto_recovered(stack: Stack) -> None:
    body = alarm(f"SW-{uuid.uuid4().hex[:6]}", 0, alarm_type="SW-HIGH", device_kind="water_level", confidence=None,
                 value=3.4, threshold=3.0, level="alarm")
    case = await stack.case_of(await stack.post("alarm", body))
    assert case["state"] == "dispatched" and case["matter"] == "SL003"
    cleared = {**body, "cleared_at": "2026-11-24T09:25:00+08:00", "level": "info"}
    response = await stack.intake.post("/v1/events/alarm", json=cleared, headers={"X-API-Key": KEYS["alarm"]})
    assert response.status_code == 200 and response.json()["status"] == "updated"
    closed = await until(stack, case["id"], lambda c: c["state"] == "closed")
    assert closed["close_reason"] == "自动恢复"
    # a dispatcher may still flag it 误报 (the device's 误报率), once
    flagged = await act(stack, closed, "mark_false_alarm", DISPATCHER, note="水位计故障")
    assert flagged["false_alarm"] is True and flagged["state"] == "closed"
    again = await stack.dispatch.post(
        f"/v1/cases/{case['id']}/actions/mark_false_alarm",
        json={"expected_version": flagged["version"]},
        headers=DISPATCHER,
    )
    assert again.status_code == 409


async def test_low_confidence_goes_to_review_and_a_dispatcher_marks_it_false(stack: Stack) -> None:
    case = await stack.case_of(await stack.post("alarm", alarm(f"CAM-{uuid.uuid4().hex[:6]}", 0, confidence=0.41)))
    assert case["state"] == "triage" and case["triage_reason"] == "low_confidence"
    case = await act(stack, case, "mark_invalid", DISPATCHER, reason="false_alarm", note="树影误识别")
    assert case["state"] == "closed" and case["invalid_reason"] == "false_alarm" and case["false_alarm"] is True


async def test_a_dispatched_report_not_yet_accepted_can_be_marked_invalid_but_not_once_accepted(stack: Stack) -> None:
    case = await stack.case_of(await stack.post("gridworker", record("gridworker")))
    assert case["state"] == "dispatched" and case["reporter_id"] == "GW330127102007"
    case = await act(stack, case, "mark_invalid", DISPATCHER, reason="not_a_problem", note="现场核实无此问题")
    assert case["state"] == "closed" and case["invalid_reason"] == "not_a_problem"
    other = await stack.case_of(await stack.post("gridworker", record("gridworker")))
    other = await act(stack, other, "accept", unit(other["unit"]))
    refused = await stack.dispatch.post(
        f"/v1/cases/{other['id']}/actions/mark_invalid",
        json={"expected_version": other["version"], "reason": "not_a_problem"},
        headers=DISPATCHER,
    )
    assert refused.status_code == 409
