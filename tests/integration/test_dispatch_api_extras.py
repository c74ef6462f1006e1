"""The dashboard's API additions (调度台所需的接口补充): action reasons, candidates, caller, 待回访.

真实 HTTP（ASGI）、PostgreSQL 与 Tansu 上的端到端测试：

* ``GET /v1/cases/{id}`` — ``action_reasons`` / ``role_actions`` for the signed-in actor; the
  incident's ``caller`` masked, never its hash. 各操作不可用原因；来电人脱敏且不含哈希。
* ``GET /v1/cases/{id}/candidates`` — routing's candidate order (devolved matter, override rule,
  another township) and, after a 退单, the rejecting unit flagged. 候选单位顺序与退单标记。
* ``GET /v1/cases?callback_pending=true`` — a closed 12345 case is listed until its 回访 is
  recorded. 待回访队列。
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from services.dispatch.actions import API_ACTIONS
from services.dispatch.queries import caller_json
from shared.embedded import TansuBroker
from tests.integration.test_dispatch_support import (
    ADMIN,
    BAISHA,
    DISPATCHER,
    FENGLIN,
    QINGXI,
    Stack,
    bearer,
    platform,
    record,
    unit,
)

HOTLINE = bearer("t-hotline")
QX_ZFD = "330127101-zfd"  # 青溪镇综合行政执法队: 占道经营 (SR001) is devolved to 青溪镇
MASKED = re.compile(r"^1\d{2}\*{4}\d{4}$")


@pytest.fixture(scope="module")
async def stack(database_url: str, module_broker: TansuBroker) -> AsyncIterator[Stack]:
    async with platform(database_url, module_broker.bootstrap) as s:
        yield s


async def detail(stack: Stack, case_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await stack.dispatch.get(f"/v1/cases/{case_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def ok(stack: Stack, case_id: str, action: str, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    """Perform an action on the current version; it must succeed. 按当前版本执行，必须成功。"""
    version = (await detail(stack, case_id, ADMIN))["version"]
    response = await stack.dispatch.post(
        f"/v1/cases/{case_id}/actions/{action}", json={"expected_version": version, **body}, headers=headers
    )
    assert response.status_code == 200, (action, response.text)
    case: dict[str, Any] = response.json()["case"]
    return case


async def candidates(stack: Stack, case_id: str, headers: dict[str, str] = DISPATCHER, **query: str) -> Any:
    return await stack.dispatch.get(f"/v1/cases/{case_id}/candidates", params=query, headers=headers)


async def hotline_case(stack: Stack, **changes: Any) -> dict[str, Any]:
    """A 12345 ticket at 青溪镇 (占道经营 → 青溪镇综合行政执法队), as admin sees it. 一件 12345 工单。"""
    case = await stack.case_of(await stack.post("12345", record("12345", **changes)))
    assert (case["state"], case["unit"], case["matter"], case["township"]) == ("dispatched", QX_ZFD, "SR001", QINGXI)
    return case


# --------------------------------------------------------------------------- action_reasons 操作不可用原因


async def test_action_reasons_for_the_unit_and_for_a_dispatcher(stack: Stack) -> None:
    case = await hotline_case(stack)
    everything = {str(a) for a in API_ACTIONS}

    mine = await detail(stack, case["id"], unit(QX_ZFD))
    reasons = mine["action_reasons"]
    assert set(reasons) == everything
    assert reasons["accept"] is None and reasons["reject"] is None
    assert set(mine["allowed_actions"]) == {a for a, why in reasons.items() if why is None}
    assert {"accept", "reject"} <= set(mine["allowed_actions"])
    assert reasons["resolve"].startswith("案件已派遣，不能办结")  # state
    assert reasons["verify"].startswith("角色 unit 不能核查")  # role
    assert mine["role_actions"] == [
        "accept", "reject", "request_extension", "resolve", "report_in", "record_inspection"
    ]

    theirs = await detail(stack, case["id"], DISPATCHER)
    reasons = theirs["action_reasons"]
    assert set(reasons) == everything
    assert reasons["accept"] is not None and reasons["accept"].startswith("角色 dispatcher 不能签收")
    assert "accept" not in theirs["allowed_actions"]
    assert reasons["supervise"] is None and reasons["reassign"] is None
    assert reasons["decide_extension"] is not None and reasons["decide_extension"].startswith("案件已派遣")
    assert "accept" not in theirs["role_actions"] and "assign" in theirs["role_actions"]

    # Another unit cannot see the case at all. 其他单位不可见。
    response = await stack.dispatch.get(f"/v1/cases/{case['id']}", headers=unit("330127102-zfd"))
    assert response.status_code == 404


# --------------------------------------------------------------------------- candidates 候选单位


async def test_candidates_follow_routing_and_flag_the_unit_that_rejected(stack: Stack) -> None:
    case = await hotline_case(stack)
    cid = case["id"]

    # The case's own matter and township: devolved unit first, then the county department.
    # 本案事项与乡镇：属地下放单位在先，县级部门候补。
    response = await candidates(stack, cid)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["matter"], body["township"], body["suggested"], body["rejected_units"]) == (
        "SR001",
        QINGXI,
        QX_ZFD,
        [],
    )
    listed = body["candidates"]
    assert [(c["unit"], c["decided_by"]) for c in listed] == [(QX_ZFD, "devolved"), ("dept-cgj", "county_department")]
    assert listed[0]["unit_name"] == "青溪镇综合行政执法队" and listed[0]["exists"] is True
    assert "已下放" in listed[0]["why_zh"]
    assert set(listed[0]) == {"unit", "unit_name", "decided_by", "exists", "why_zh", "rejected"}
    assert not any(c["rejected"] for c in listed)

    # Another devolved matter: devolved unit, stationed agency, county department. 下放事项的完整链条。
    listed = (await candidates(stack, cid, matter="WJ002")).json()["candidates"]
    assert [(c["unit"], c["decided_by"]) for c in listed] == [
        (QX_ZFD, "devolved"),
        ("pz-zrzys-qingxi", "stationed_agency"),
        ("dept-zrzyj", "county_department"),
    ]
    # An override rule comes first (非法采砂 in 青溪镇 → 县水利局). 派遣规则优先。
    listed = (await candidates(stack, cid, matter="SL001")).json()["candidates"]
    assert listed[0]["unit"] == "dept-slj" and listed[0]["decided_by"] == "rule"
    assert "sand-mining" in listed[0]["why_zh"]
    # Another township: its own devolved unit. 指定其他乡镇。
    body = (await candidates(stack, cid, matter="SR001", township=FENGLIN)).json()
    assert body["township"] == FENGLIN and body["suggested"] == "330127102-zfd"
    # Matter not devolved to 枫林镇: the county department. 未下放：县级部门。
    listed = (await candidates(stack, cid, matter="SR004", township=FENGLIN)).json()["candidates"]
    assert [(c["unit"], c["decided_by"]) for c in listed] == [("dept-cgj", "county_department")]

    # Who may ask, and bad input. 权限与非法参数。
    assert (await candidates(stack, cid, headers=unit(QX_ZFD))).status_code == 403
    assert (await candidates(stack, cid, headers=bearer("t-disp-bs"))).status_code == 404  # outside 白沙街道
    assert (await candidates(stack, cid, headers=bearer("t-disp-qx"))).status_code == 200
    assert (await candidates(stack, cid, matter="NOPE")).status_code == 422
    assert (await candidates(stack, cid, township="330127101001")).status_code == 422  # a village, not a township

    # 退单: re-dispatched to the county department; the rejecting unit is flagged, the next one suggested.
    # 退单后再派至县级部门；退单单位被标记，建议改为下一候选。
    after = await ok(stack, cid, "reject", unit(QX_ZFD), reason="摊贩在桥面，属城管局管辖")
    assert after["unit"] == "dept-cgj"
    body = (await candidates(stack, cid)).json()
    assert [(c["unit"], c["rejected"]) for c in body["candidates"]] == [(QX_ZFD, True), ("dept-cgj", False)]
    assert body["rejected_units"] == [QX_ZFD] and body["suggested"] == "dept-cgj"
    # Ruled invalid, the unit may get the case back: no longer flagged. 判定退单无效后不再标记。
    await ok(stack, cid, "rule_rejection", DISPATCHER, valid=False, unit=QX_ZFD, note="属执法队职责")
    body = (await candidates(stack, cid)).json()
    assert body["rejected_units"] == [] and not any(c["rejected"] for c in body["candidates"])


async def test_candidates_of_an_unlocated_case_need_a_township(stack: Stack) -> None:
    body = record("12345", location=None, division_code=None, address="某处", category_code="999999")
    case = await stack.case_of(await stack.post("12345", body))
    assert (case["state"], case["triage_reason"]) == ("triage", "unlocated")
    answer = (await candidates(stack, case["id"])).json()
    assert (answer["township"], answer["candidates"], answer["suggested"]) == (None, [], None)
    answer = (await candidates(stack, case["id"], matter="SR001", township=BAISHA)).json()
    assert answer["suggested"] == "330127001-zfd"
    assert (await detail(stack, case["id"], DISPATCHER))["action_reasons"]["assign"] is None


# --------------------------------------------------------------------------- caller 来电人


async def test_caller_is_masked_and_never_hashed(stack: Stack) -> None:
    phone = "13987654321"
    case = await hotline_case(stack, caller={"name": "王先生", "phone": phone, "anonymous": False})
    response = await stack.dispatch.get(f"/v1/cases/{case['id']}", headers=DISPATCHER)
    caller = response.json()["incident"]["caller"]
    assert caller == {"phone_masked": "139****4321", "anonymous": False}
    assert MASKED.match(caller["phone_masked"])
    [[stored_hash]] = await stack.sql("SELECT phone_hash FROM dispatch.cases WHERE id = :id", id=case["id"])
    assert stored_hash  # dispatch keeps it for repeat-caller merging …
    text = response.text
    assert "phone_hash" not in text and stored_hash not in text  # … and never shows it
    assert phone not in text and "王先生" not in text
    listed = await stack.dispatch.get("/v1/cases", params={"source_id": case["source_id"]}, headers=DISPATCHER)
    assert stored_hash not in listed.text

    anonymous = record("12345")
    anonymous["caller"] = {"phone": "13700001111", "anonymous": True}
    case = await stack.case_of(await stack.post("12345", anonymous))
    assert (await detail(stack, case["id"], ADMIN))["incident"]["caller"]["anonymous"] is True

    cityops = await stack.case_of(await stack.post("cityops", record("cityops")))
    assert (await detail(stack, cityops["id"], ADMIN))["incident"]["caller"] is None


# --------------------------------------------------------------------------- 待回访


async def pending_ids(stack: Stack, headers: dict[str, str] = DISPATCHER, **params: Any) -> set[str]:
    response = await stack.dispatch.get(
        "/v1/cases", params={"callback_pending": "true", "limit": 500, **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    return {c["id"] for c in response.json()["items"]}


async def close(stack: Stack, case_id: str, who: str) -> None:
    await ok(stack, case_id, "accept", unit(who))
    await ok(stack, case_id, "resolve", unit(who), result="已处置完毕")
    closed = await ok(stack, case_id, "verify", DISPATCHER, passed=True)
    assert closed["state"] == "closed"


async def test_callback_pending_lists_a_closed_hotline_case_until_its_callback(stack: Stack) -> None:
    case = await hotline_case(stack)
    cid = case["id"]
    assert cid not in await pending_ids(stack)  # still open 未结案
    await close(stack, cid, QX_ZFD)
    assert cid in await pending_ids(stack)
    assert cid in await pending_ids(stack, HOTLINE)
    assert cid in await pending_ids(stack, bearer("t-disp-qx"), township=QINGXI)
    assert cid not in await pending_ids(stack, bearer("t-disp-bs"))  # outside 白沙街道's scope
    assert cid not in await pending_ids(stack, township=BAISHA)

    # A closed 数字城管 case never waits for a callback. 数字城管案件不回访。
    cityops = await stack.case_of(await stack.post("cityops", record("cityops")))
    await close(stack, cityops["id"], cityops["unit"])
    assert cityops["id"] not in await pending_ids(stack)

    # Recorded: gone from the queue; reopened after an unsatisfied callback and closed again: back.
    # 回访后移出；不满意重办、再次结案后重新待回访。
    await ok(stack, cid, "callback", HOTLINE, satisfaction="unsatisfied", solved=False, note="仍有摊贩")
    assert cid not in await pending_ids(stack)
    await ok(stack, cid, "reopen", DISPATCHER, reason="回访不满意，重办")
    assert cid not in await pending_ids(stack)
    await ok(stack, cid, "resolve", unit(QX_ZFD), result="长效管控")
    await ok(stack, cid, "verify", DISPATCHER, passed=True)
    assert cid in await pending_ids(stack)
    await ok(stack, cid, "callback", HOTLINE, satisfaction="satisfied", solved=True)
    assert cid not in await pending_ids(stack)

    # Conflicting filters are refused. 冲突的筛选条件被拒绝。
    for params in ({"state": "dispatched"}, {"queue": "triage"}, {"source": "cityops"}, {"merged": "true"}):
        response = await stack.dispatch.get(
            "/v1/cases", params={"callback_pending": "true", **params}, headers=DISPATCHER
        )
        assert response.status_code == 422, (params, response.text)
    response = await stack.dispatch.get("/v1/cases", params={"callback_pending": "false"}, headers=DISPATCHER)
    assert response.status_code == 422


async def test_callback_pending_pages_with_the_cursor(stack: Stack) -> None:
    ids = []
    for _ in range(3):
        case = await hotline_case(stack)
        await close(stack, case["id"], QX_ZFD)
        ids.append(case["id"])
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"callback_pending": "true", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await stack.dispatch.get("/v1/cases", params=params, headers=ADMIN)).json()
        assert len(page["items"]) <= 2
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(ids) <= set(seen)
    assert [seen.index(i) for i in reversed(ids)] == sorted(seen.index(i) for i in ids)  # newest first


def test_caller_json_keeps_two_keys_only() -> None:
    """The caller view keeps two keys only, whatever the stored incident holds. 来电人只保留两个字段。"""
    stored = {"caller": {"phone_masked": "138****5678", "phone_hash": "abc123", "anonymous": False}}
    shown = caller_json(stored)
    assert shown == {"phone_masked": "138****5678", "anonymous": False}
    assert b"abc123" not in orjson.dumps(shown)
    assert caller_json({}) is None and caller_json({"caller": None}) is None
