"""Lifecycle actions through the API (issue 5): 签收, 延期, 办结, 核查, 回访, 重办, 退单, 手动派遣 …

闭环处置接口端到端测试：真实 HTTP（ASGI）、PostgreSQL 与 Tansu。
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.dispatch.case_model import CaseSnapshot
from services.dispatch.lifecycle import replay
from services.dispatch.queries import timeline_entries
from shared.embedded import TansuBroker
from shared.events import CASE_EVENTS, decode_envelope
from tests.conftest import read_topic
from tests.helpers import eventually
from tests.integration.test_dispatch_support import (
    ADMIN,
    DISPATCHER,
    Stack,
    bearer,
    platform,
    record,
    unit,
)

HOTLINE = bearer("t-hotline")


@pytest.fixture(scope="module")
async def stack(database_url: str, module_broker: TansuBroker) -> AsyncIterator[Stack]:
    async with platform(database_url, module_broker.bootstrap) as s:
        yield s


async def act(
    client: httpx.AsyncClient, case: dict[str, Any], action: str, headers: dict[str, str], **body: Any
) -> httpx.Response:
    body.setdefault("expected_version", case["version"])
    return await client.post(f"/v1/cases/{case['id']}/actions/{action}", json=body, headers=headers)


async def ok(client: httpx.AsyncClient, case: dict[str, Any], action: str, headers: dict[str, str], **body: Any) -> Any:
    """Perform an action that must succeed; returns the case after it. 执行必须成功的操作。"""
    response = await act(client, case, action, headers, **body)
    assert response.status_code == 200, (action, response.text)
    result: dict[str, Any] = response.json()["case"]
    return result


async def events_of(bootstrap: str, case_id: str, expect: int) -> list[Any]:
    found: list[Any] = []

    async def check() -> bool:
        found.clear()
        for rec in await read_topic(bootstrap, CASE_EVENTS, expect=10**9, timeout_s=1.0):
            env = decode_envelope(rec.value)
            if str(env.data.case_id) == case_id:
                found.append(env)
        return len(found) >= expect

    await eventually(check, timeout_s=30, every_s=0.3)
    return sorted(found, key=lambda e: e.data.version)


async def replayed(stack: Stack, case_id: str) -> tuple[CaseSnapshot, CaseSnapshot, list[dict[str, Any]]]:
    """(replayed from the timeline, stored) snapshots of a case. 由时间线回放与存储的快照。"""
    timeline = (await stack.dispatch.get(f"/v1/cases/{case_id}/timeline", headers=ADMIN)).json()["entries"]
    rows = [{**e, "occurred_at": datetime.fromisoformat(e["occurred_at"])} for e in timeline]
    rebuilt = replay(timeline_entries(rows), recheck=True)
    stored = (await stack.dispatch.get(f"/v1/cases/{case_id}", headers=ADMIN)).json()["snapshot"]
    return rebuilt, CaseSnapshot.model_validate(stored), timeline


# --------------------------------------------------------------------------- 12345 闭环


async def test_hotline_ticket_through_the_whole_loop(stack: Stack) -> None:
    c = await stack.case_of(await stack.post("12345", record("12345")))
    zfd, d = unit("330127101-zfd"), stack.dispatch
    assert (c["state"], c["unit"], c["version"]) == ("dispatched", "330127101-zfd", 2)
    detail = (await d.get(f"/v1/cases/{c['id']}", headers=zfd)).json()
    assert {"accept", "reject"} <= set(detail["allowed_actions"])

    c = await ok(d, c, "accept", zfd)
    old_deadline = datetime.fromisoformat(c["deadline"])
    # Beyond the cap (10 working days past the deadline; 30 calendar days are more): refused with the reason.
    too_far = await act(d, c, "request_extension", zfd, new_deadline=(old_deadline + timedelta(days=30)).isoformat(),
                        reason="想多要点时间")  # fmt: skip
    assert too_far.status_code == 422 and "10 个工作日" in too_far.text, too_far.text
    new_deadline = (old_deadline + timedelta(days=3)).isoformat()
    c = await ok(d, c, "request_extension", zfd, new_deadline=new_deadline, reason="需协调业主，申请延期")
    c = await ok(d, c, "decide_extension", DISPATCHER, approved=True, note="同意")
    assert datetime.fromisoformat(c["deadline"]) == datetime.fromisoformat(new_deadline)
    # One extension per case: a second request is refused, saying why.
    again = await act(d, c, "request_extension", zfd, new_deadline=(old_deadline + timedelta(days=4)).isoformat(),
                      reason="再延一次")  # fmt: skip
    assert again.status_code == 409 and "最多延期 1 次" in again.text, again.text
    c = await ok(d, c, "resolve", zfd, result="已劝离摊贩", photos=["p1.jpg"])
    c = await ok(d, c, "verify", DISPATCHER, passed=False, note="现场仍有摊贩")
    assert c["state"] == "reopened"
    c = await ok(d, c, "resolve", zfd, result="已设置隔离栏")
    c = await ok(d, c, "verify", DISPATCHER, passed=True)
    assert c["state"] == "closed"
    c = await ok(d, c, "callback", HOTLINE, satisfaction="unsatisfied", solved=False, note="早上又来了")
    c = await ok(d, c, "reopen", DISPATCHER, reason="回访不满意，重办")
    assert c["state"] == "reopened"
    c = await ok(d, c, "resolve", zfd, result="联合派出所长效管控")
    c = await ok(d, c, "verify", DISPATCHER, passed=True)
    assert (c["state"], c["version"]) == ("closed", 13)

    rebuilt, stored, timeline = await replayed(stack, c["id"])
    assert rebuilt == stored
    assert (stored.rework_count, stored.reopen_count, stored.extension_count, stored.callback_count) == (1, 1, 1, 1)
    assert [e["version"] for e in timeline] == list(range(1, 14))
    assert all(e["actor_role"] and e["occurred_at"] for e in timeline)
    extended = timeline[4]
    assert extended["event_type"] == "case.extended" and extended["actor_role"] == "dispatcher"
    assert datetime.fromisoformat(extended["deadline"]) == datetime.fromisoformat(new_deadline)
    assert timeline[2]["actor_unit"] == "330127101-zfd" and timeline[2]["action"] == "accept"

    events = await events_of(stack.bootstrap, c["id"], expect=12)
    assert [e.type for e in events] == [
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
    by_type = {e.type: e for e in events}
    assert by_type["case.extended"].data.extension_approved is True
    assert by_type["case.extended"].data.deadline == datetime.fromisoformat(new_deadline)
    verified = [e.data.verification_passed for e in events if e.type == "case.verified"]
    assert verified == [False, True, True]
    callback = by_type["case.callback_recorded"].data
    assert (callback.satisfaction, callback.solved, callback.source) == ("unsatisfied", False, "12345")
    assert all(e.data.township == "330127101" and e.data.matter == "SR001" for e in events)
    assert all(e.data.deadline is not None and e.data.time_basis == "working" for e in events)
    assert [e.data.version for e in events] == list(range(2, 14))
    assert len({e.id for e in events}) == 12


# --------------------------------------------------------------------------- 退单 → 再派遣 → 转人工 → 手动派遣


async def test_cityops_case_rejected_twice_goes_to_triage_and_is_assigned_by_hand(stack: Stack) -> None:
    d = stack.dispatch
    c = await stack.case_of(await stack.post("cityops", record("cityops")))
    assert c["unit"] == "330127001-zfd"

    response = await act(d, c, "reject", unit("330127001-zfd"), reason="垃圾清运不属执法队职责")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [t["event_type"] for t in body["transitions"]] == ["case.rejected", "case.dispatched"]
    c = body["case"]
    assert (c["state"], c["unit"], c["unit_kind"]) == ("dispatched", "dept-cgj", "county_department")

    response = await act(d, c, "reject", unit("dept-cgj"), reason="属地问题，应由街道处理")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [t["event_type"] for t in body["transitions"]] == ["case.rejected", "case.triage_required"]
    c = body["case"]
    assert (c["state"], c["unit"], c["triage_reason"]) == ("triage", None, "rejected_too_often")
    queue = (await d.get("/v1/cases", params={"queue": "triage", "limit": 500}, headers=ADMIN)).json()
    assert c["id"] in {x["id"] for x in queue["items"]}

    # never back to a unit that rejected it 不得派回退单单位
    refused = await d.post(
        f"/v1/cases/{c['id']}/assign", json={"unit": "330127001-zfd", "reason": "试派"}, headers=DISPATCHER
    )
    assert refused.status_code == 422, refused.text
    unknown = await d.post(f"/v1/cases/{c['id']}/assign", json={"unit": "no-such", "reason": "x"}, headers=DISPATCHER)
    assert unknown.status_code == 422
    by_unit = await d.post(
        f"/v1/cases/{c['id']}/assign", json={"unit": "330127001-csgl", "reason": "x"}, headers=unit("dept-cgj")
    )
    assert by_unit.status_code == 403

    assigned = await d.post(
        f"/v1/cases/{c['id']}/assign",
        json={"unit": "330127001-csgl", "reason": "人工判定：城市管理办公室负责清运", "matter": "SR002"},
        headers=DISPATCHER,
    )
    assert assigned.status_code == 200, assigned.text
    c = assigned.json()["case"]
    assert (c["state"], c["unit"], c["decided_by"], c["triage_reason"]) == (
        "dispatched",
        "330127001-csgl",
        "manual",
        None,
    )
    assert c["deadline"] and c["reject_window_ends_at"] and c["accept_deadline"]
    detail = (await d.get(f"/v1/cases/{c['id']}", headers=ADMIN)).json()
    [manual] = detail["explanation"]["manual_decisions"]
    assert manual["unit"] == "330127001-csgl" and manual["reason"].startswith("人工判定")

    # the dispatcher rules the first rejection invalid (counts against the unit) 判定第一次退单无效
    c = await ok(d, c, "rule_rejection", DISPATCHER, valid=False, unit="330127001-zfd", note="属执法队职责")
    rebuilt, stored, _ = await replayed(stack, c["id"])
    assert rebuilt == stored
    assert [(r.unit, r.valid) for r in stored.rejections] == [("330127001-zfd", False), ("dept-cgj", None)]

    events = await events_of(stack.bootstrap, c["id"], expect=7)
    types = [e.type for e in events]
    assert types == [
        "case.dispatched",
        "case.rejected",
        "case.dispatched",
        "case.rejected",
        "case.triage_required",
        "case.assigned",
        "case.rejection_ruled",
    ]
    rejected = [e.data.rejected_unit for e in events if e.type == "case.rejected"]
    assert rejected == ["330127001-zfd", "dept-cgj"]
    ruled = events[-1].data
    assert (ruled.rejected_unit, ruled.rejection_valid) == ("330127001-zfd", False)
    assert events[5].data.unit == "330127001-csgl" and events[5].data.unit_kind == "township_office"


# --------------------------------------------------------------------------- concurrency and refusals


async def test_two_concurrent_accepts_one_wins(stack: Stack) -> None:
    c = await stack.case_of(await stack.post("gridworker", record("gridworker")))
    zfd = unit("330127102-zfd")
    first, second = await asyncio.gather(act(stack.dispatch, c, "accept", zfd), act(stack.dispatch, c, "accept", zfd))
    codes = sorted([first.status_code, second.status_code])
    assert codes == [200, 409], (first.text, second.text)
    loser = first if first.status_code == 409 else second
    assert loser.json()["state"] == "accepted" and loser.json()["version"] == c["version"] + 1
    assert loser.json()["kind"] == "conflict"


async def test_refusals_map_to_http(stack: Stack) -> None:
    d = stack.dispatch
    c = await stack.case_of(await stack.post("12345", record("12345", title="楼道燃气味道很重")))
    # rule gas-qingxi: 应急管理办公室主办，派出所协办
    assert (c["unit"], c["cohandlers"]) == ("330127101-yjgl", ["pz-pcs-qingxi"])
    # a co-handler acting on the primary unit's case: visible, but forbidden 协办单位不能签收
    assert (await d.get(f"/v1/cases/{c['id']}", headers=unit("pz-pcs-qingxi"))).status_code == 200
    response = await act(d, c, "accept", unit("pz-pcs-qingxi"))
    assert response.status_code == 403, response.text
    # a unit with nothing to do with the case does not even see it 无关单位不可见
    assert (await act(d, c, "accept", unit("330127101-zfd"))).status_code == 404
    # a dispatcher may not 签收; a township dispatcher of another township does not see it
    assert (await act(d, c, "accept", DISPATCHER)).status_code == 403
    assert (await act(d, c, "supervise", bearer("t-disp-bs"), note="x")).status_code == 404
    # not allowed in this state → 409 with the current state and version
    response = await act(d, c, "resolve", unit("330127101-yjgl"), result="x")
    assert response.status_code == 409 and response.json()["state"] == "dispatched"
    # stale version → 409
    response = await act(d, c, "accept", unit("330127101-yjgl"), expected_version=1)
    assert response.status_code == 409 and response.json()["kind"] == "conflict"
    # invalid bodies → 422
    assert (await act(d, c, "reject", unit("330127101-yjgl"))).status_code == 422  # reason missing
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await act(d, c, "accept", unit("330127101-yjgl"), occurred_at=future)).status_code == 422
    bad = await d.post(f"/v1/cases/{c['id']}/actions/accept", content=b"[1]", headers=unit("330127101-yjgl"))
    assert bad.status_code == 422
    # unknown action / case
    assert (await act(d, c, "teleport", ADMIN)).status_code == 404
    assert (await d.post(f"/v1/cases/{uuid.uuid4()}/actions/accept", json={}, headers=ADMIN)).status_code == 404
    # escalate needs a county department 吹哨对象须为县级部门
    assert (await act(d, c, "escalate", bearer("t-town-qx"), department="330127101-zfd", reason="x")).status_code == 422
    c = await ok(d, c, "escalate", bearer("t-town-qx"), department="dept-zjj", reason="燃气管线属住建局")
    assert (await d.get(f"/v1/cases/{c['id']}", headers=unit("dept-zjj"))).status_code == 200
    c = await ok(d, c, "report_in", unit("dept-zjj"), note="已报到")
    events = await events_of(stack.bootstrap, c["id"], expect=4)
    escalated = next(e for e in events if e.type == "case.escalated")
    assert escalated.data.department == "dept-zjj" and escalated.data.accept_deadline is not None


async def test_merged_case_refuses_actions(stack: Stack) -> None:
    first = record("cityops")
    one = await stack.case_of(await stack.post("cityops", first))
    two = await stack.case_of(await stack.post("cityops", record("cityops", location=first["location"])))
    assert two["merged_into"] == one["id"]
    response = await act(stack.dispatch, two, "supervise", DISPATCHER, note="督办")
    assert response.status_code == 409 and "merged" in response.json()["detail"]


# --------------------------------------------------------------------------- every case replays from its timeline


async def test_every_case_rebuilds_from_its_timeline(stack: Stack) -> None:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = (await stack.dispatch.get("/v1/cases", params=params, headers=ADMIN)).json()
        ids += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(ids) >= 5
    for case_id in ids:
        rebuilt, stored, _ = await replayed(stack, case_id)
        assert rebuilt == stored, case_id
