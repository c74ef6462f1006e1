"""Lifecycle actions in batches (批量流转, ``POST /v1/cases/actions``): a history's lifecycle at import pace.

Real HTTP (ASGI), PostgreSQL and Tansu. A batch applies each item as the single action would; each
item answers on its own; a refused item changes nothing and the others still apply; two batches over
the same cases in opposite orders both finish. 批量流转端到端测试。
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.dispatch.action_batches import MAX_BATCH_ACTIONS
from shared.embedded import TansuBroker
from tests.integration.test_dispatch_lifecycle import act, events_of, ok, replayed
from tests.integration.test_dispatch_support import ADMIN, DISPATCHER, Stack, platform, record, unit

ZFD = "330127101-zfd"


@pytest.fixture(scope="module")
async def stack(database_url: str, module_broker: TansuBroker) -> AsyncIterator[Stack]:
    async with platform(database_url, module_broker.bootstrap) as s:
        yield s


async def zfd_cases(stack: Stack, n: int) -> list[dict[str, Any]]:
    """``n`` 12345 tickets dispatched to 清溪 综合执法队 (each at its own spot). 派给综合执法队的案件。"""
    found = [await stack.case_of(await stack.post("12345", record("12345"))) for _ in range(n)]
    assert all((c["state"], c["unit"]) == ("dispatched", ZFD) for c in found), found
    return found


async def batch(client: httpx.AsyncClient, items: list[Any], headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/v1/cases/actions", json={"items": items}, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def item(case: dict[str, Any], action: str, version: int, **body: Any) -> dict[str, Any]:
    return {"case_id": case["id"], "action": action, "body": {"expected_version": version, **body}}


_SAME_IN_BOTH = ("version", "action", "event_type", "state", "previous_state", "actor_role", "actor_unit", "actor_id",
                 "note")  # fmt: skip


async def actions_of(stack: Stack, case_id: str) -> list[dict[str, Any]]:
    """The timeline's action entries (after 立案 and 派遣) without their times and ids; of what changed, the
    names (``last_transition_at`` left out: a batch's accept and resolve happen at the same instant, so the
    second does not change it). 操作产生的时间线条目（不含时间与 id）。"""
    entries = (await stack.dispatch.get(f"/v1/cases/{case_id}/timeline", headers=ADMIN)).json()["entries"]
    return [
        {k: e[k] for k in _SAME_IN_BOTH}
        | {
            "body": {k: v for k, v in e["body"].items() if k != "occurred_at"},
            "changed": sorted(set(e["changes"] or {}) - {"last_transition_at"}),
        }
        for e in entries
        if e["action"] not in (None, "dispatch")
    ]


async def test_a_batch_takes_cases_through_the_loop_as_single_actions_would(stack: Stack) -> None:
    d, zfd = stack.dispatch, unit(ZFD)
    single, *batched = await zfd_cases(stack, 4)
    # The reference: one case through accept → resolve → verify, one request each. 逐个请求作参照。
    c = await ok(d, single, "accept", zfd)
    c = await ok(d, c, "resolve", zfd, result="已处置")
    c = await ok(d, c, "verify", DISPATCHER, passed=True)
    assert c["state"] == "closed"

    # The unit's accept and result of three cases in one batch, then the dispatcher's verifications in another.
    v = {c["id"]: c["version"] for c in batched}
    unit_items = [item(c, "accept", v[c["id"]]) for c in batched]
    unit_items += [item(c, "resolve", v[c["id"]] + 1, result="已处置") for c in batched]
    answer = await batch(d, unit_items, zfd)
    assert (answer["applied"], answer["refused"]) == (6, 0), answer
    assert [r["index"] for r in answer["results"]] == list(range(6))
    assert [(r["status"], r["state"]) for r in answer["results"]] == [(200, "accepted")] * 3 + [(200, "resolved")] * 3
    assert [r["transitions"][0]["event_type"] for r in answer["results"][3:]] == ["case.resolved"] * 3
    answer = await batch(d, [item(c, "verify", v[c["id"]] + 2, passed=True) for c in batched], DISPATCHER)
    assert answer["applied"] == 3 and {r["state"] for r in answer["results"]} == {"closed"}

    reference = await actions_of(stack, single["id"])
    assert [e["action"] for e in reference] == ["accept", "resolve", "verify"]
    for c in batched:
        assert await actions_of(stack, c["id"]) == reference
        rebuilt, stored, _ = await replayed(stack, c["id"])
        assert rebuilt == stored and stored.version == v[c["id"]] + 3
    events = await events_of(stack.bootstrap, batched[0]["id"], expect=4)
    assert [e.type for e in events] == ["case.dispatched", "case.accepted", "case.resolved", "case.verified"]


async def test_each_item_answers_on_its_own_and_a_refused_item_changes_nothing(stack: Stack) -> None:
    d, zfd = stack.dispatch, unit(ZFD)
    fine, stale, foreign_unit = await zfd_cases(stack, 3)
    other = await stack.case_of(await stack.post("12345", record("12345", title="楼道燃气味道很重")))
    assert other["unit"] != ZFD  # another unit's case: 清溪 综合执法队 does not see it
    first = record("cityops")
    survivor = await stack.case_of(await stack.post("cityops", first))
    merged = await stack.case_of(await stack.post("cityops", record("cityops", location=first["location"])))
    assert merged["merged_into"] == survivor["id"]

    items: list[Any] = [
        item(fine, "accept", fine["version"]),
        item(stale, "accept", stale["version"] - 1),  # stale version → 409, nothing written
        item(other, "accept", other["version"]),  # outside the caller's scope → 404
        {"case_id": str(uuid.uuid4()), "action": "accept", "body": {"expected_version": 2}},  # no such case → 404
        item(fine, "resolve", fine["version"] + 1),  # result missing → 422
        item(fine, "teleport", fine["version"] + 1),  # unknown action → 422
        {"action": "accept", "body": {}},  # no case id → 422
        "accept",  # not an object → 422
        item(foreign_unit, "resolve", foreign_unit["version"], result="x"),  # not allowed before accept → 409
        item(fine, "resolve", fine["version"] + 1, result="已处置"),  # sees the batch's accept → 200
    ]
    response = await d.post("/v1/cases/actions", json={"items": items}, headers=zfd)
    assert response.status_code == 422  # the items must be objects: the request's shape is checked first
    answer = await batch(d, items[:7] + items[8:], zfd)
    statuses = [(r["index"], r["status"]) for r in answer["results"]]
    assert statuses == [(0, 200), (1, 409), (2, 404), (3, 404), (4, 422), (5, 422), (6, 422), (7, 409), (8, 200)]
    assert (answer["applied"], answer["refused"]) == (2, 7)
    conflict = answer["results"][1]
    assert (conflict["kind"], conflict["state"], conflict["version"]) == ("conflict", "dispatched", stale["version"])
    assert "teleport" in answer["results"][5]["detail"] and answer["results"][7]["kind"] == "not_allowed"
    assert answer["results"][6]["case_id"] is None and answer["results"][6]["kind"] == "invalid"
    assert answer["results"][8]["version"] == fine["version"] + 2
    # A merged report refuses every action, in a batch as alone. 并案件拒绝操作。
    answer = await batch(d, [item(merged, "supervise", merged["version"], note="督办")], DISPATCHER)
    assert answer["results"][0]["status"] == 409 and "merged" in answer["results"][0]["detail"]

    # The refused items changed nothing; the applied ones are stored. 被拒项不改变数据。
    for case, state, version in (
        (stale, "dispatched", stale["version"]),
        (other, "dispatched", other["version"]),
        (merged, merged["state"], merged["version"]),
        (foreign_unit, "dispatched", foreign_unit["version"]),
        (fine, "resolved", fine["version"] + 2),
    ):
        now = (await d.get(f"/v1/cases/{case['id']}", headers=ADMIN)).json()
        assert (now["state"], now["version"]) == (state, version), case["id"]


async def test_the_scope_is_checked_again_before_each_item(stack: Stack) -> None:
    """A unit's 退单 earlier in the batch sends the case to another unit: the unit's next item on it finds
    no case it may see (404), as the single action would answer. 逐项检查可见范围。"""
    (c,) = await zfd_cases(stack, 1)
    v = c["version"]
    items = [item(c, "reject", v, reason="不属本队职责"), item(c, "accept", v + 2)]
    answer = await batch(stack.dispatch, items, unit(ZFD))
    rejected, accepted = answer["results"]
    assert rejected["status"] == 200 and rejected["transitions"][0]["event_type"] == "case.rejected"
    now = (await stack.dispatch.get(f"/v1/cases/{c['id']}", headers=ADMIN)).json()
    assert now["unit"] != ZFD and now["version"] == v + 2, now
    assert accepted["status"] == 404, accepted
    alone = await act(stack.dispatch, now, "accept", unit(ZFD))
    assert alone.status_code == 404


async def test_two_batches_over_the_same_cases_in_opposite_orders_both_finish(stack: Stack) -> None:
    d, zfd = stack.dispatch, unit(ZFD)
    cases = await zfd_cases(stack, 6)
    forward = [item(c, "accept", c["version"]) for c in cases]
    results = await asyncio.gather(*(batch(d, items, zfd) for items in (forward, forward[::-1]) * 3))
    # Each case was accepted exactly once, by whichever batch locked it first; the others saw a conflict.
    assert sum(r["applied"] for r in results) == len(cases)
    assert all(r["applied"] + r["refused"] == len(cases) for r in results)
    for c in cases:
        timeline = (await d.get(f"/v1/cases/{c['id']}/timeline", headers=ADMIN)).json()["entries"]
        assert [e["action"] for e in timeline].count("accept") == 1


async def test_batch_size_is_bounded(stack: Stack) -> None:
    d = stack.dispatch
    empty = await d.post("/v1/cases/actions", json={"items": []}, headers=DISPATCHER)
    assert empty.status_code == 422
    items = [{"case_id": str(uuid.uuid4()), "action": "accept", "body": {}}] * (MAX_BATCH_ACTIONS + 1)
    too_many = await d.post("/v1/cases/actions", json={"items": items}, headers=DISPATCHER)
    assert too_many.status_code == 413 and str(MAX_BATCH_ACTIONS) in too_many.json()["detail"]
    anonymous = await d.post("/v1/cases/actions", json={"items": items[:1]})
    assert anonymous.status_code == 401


async def test_an_inspection_found_rectify_in_a_batch_creates_its_follow_up(stack: Stack) -> None:
    """整改: the follow-up check task is created as the single action creates it. 批量中的整改生成复查任务。"""
    staff = "pz-scjgs-qingxi"  # 青溪市场监管所 supervises 食品经营 in 枫林镇
    tasks = [await stack.case_of(await stack.post("approval", record("approval", example_spot=True))) for _ in range(2)]
    assert {(t["kind"], t["unit"]) for t in tasks} == {("inspection", staff)}
    items = [item(t, "accept", t["version"]) for t in tasks]
    items += [item(t, "record_inspection", t["version"] + 1, result="rectify", note="后厨排烟设施未改造",
                   follow_up_within_days=5) for t in tasks]  # fmt: skip
    answer = await batch(stack.dispatch, items, unit(staff))
    assert [r["status"] for r in answer["results"]] == [200] * 4, answer
    for t in tasks:
        now = (await stack.dispatch.get(f"/v1/cases/{t['id']}", headers=ADMIN)).json()
        assert (now["state"], now["inspection_result"], now["version"]) == ("closed", "rectify", t["version"] + 2)
        follow = await stack.case_of_id(now["follow_up_case"])
        assert follow["follow_up_of"] == t["id"] and (follow["state"], follow["unit"]) == ("dispatched", staff)
        rebuilt, stored, _ = await replayed(stack, t["id"])
        assert rebuilt == stored
