"""The dispatcher dashboard in a real browser (Debian Chromium via Playwright) against the real services.

调度台真实浏览器测试：Playwright 驱动 Debian Chromium，访问真实运行的受理、网格、派遣、绩效服务。

Covers the issue's scenario: sign in; the triage queue fills when an event is posted (live, over
the SSE stream); open the case (source record with the caller masked, map, routing explanation,
timeline, actions with the server's reasons); assign it from triage with the routing suggestion
first; watch it move to 待签收 without reloading — in this browser and in a second dispatcher's; a
unit signs for its case (scope and action buttons); units that rejected a case are flagged in
manual dispatch; the 待回访 queue; the performance view and its xlsx download; the map's offline
fallback. Screenshots: test-artifacts/browser/ (docs/screenshots/ with UPDATE_DOC_SCREENSHOTS=1).
"""

from __future__ import annotations

import io
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest
from openpyxl import load_workbook
from playwright.async_api import Route, expect

from shared.calendar import SHANGHAI
from tests.browser.conftest import ARTIFACTS, MOBILE, Session
from tests.browser.stack import Platform
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(240)

NewSession = Callable[..., Awaitable[Session]]
UNCATEGORISED = "999999"  # a 12345 category code the demo county does not map → triage 无法定性
QINGXI_ZFD = "330127101-zfd"  # 青溪镇综合行政执法队


async def count_of(session: Session, queue: str) -> int:
    """The number on a queue tab (waits until the queues are loaded)."""
    count = session.page.locator(f"[data-queue={queue}] .count")
    await expect(count).to_have_attribute("data-count", re.compile(r"^\d+$"))
    return int(await count.get_attribute("data-count") or 0)


def row(session: Session, source_id: str) -> Any:
    return session.page.locator("tr[data-case-id]", has_text=source_id)


async def test_sign_in_triage_fills_live_assign_moves_to_pending_acceptance(
    new_session: NewSession, platform: Platform
) -> None:
    dispatcher = await new_session()
    await dispatcher.open()
    await expect(dispatcher.page.locator("form[data-form=login] h1")).to_have_text("综合指挥中心 · 调度台")
    await dispatcher.shot("01-login", doc=True)

    # A wrong token is refused on the form. 错误令牌被拒绝。
    await dispatcher.page.fill("#token", "not-a-token")
    await dispatcher.page.click("form[data-form=login] button[type=submit]")
    await expect(dispatcher.page.locator("form[data-form=login] .form-error")).to_contain_text("令牌无效")

    await dispatcher.sign_in("t-disp")
    await expect(dispatcher.page.locator("#scope")).to_have_text("派遣员 · 全县")
    await expect(dispatcher.page.locator("#brand-title")).to_contain_text("青溪县")
    await expect(dispatcher.page.locator("[data-queue=triage]")).to_have_class(re.compile(r"\bactive\b"))
    before = await count_of(dispatcher, "triage")
    await dispatcher.mark()

    # A second dispatcher, bound to 青溪镇, watches 待签收 in another browser. 另一位乡镇派遣员同时在看。
    watcher = await new_session()
    await watcher.open("#/queues/dispatched")
    await watcher.sign_in("t-disp-qx")
    await expect(watcher.page.locator("#scope")).to_have_text("派遣员 · 青溪镇")
    await count_of(watcher, "dispatched")
    await watcher.mark()

    # Cases of other townships reach the county dispatcher only. 其他乡镇的案件只出现在全县派遣员处。
    elsewhere = [await platform.post_record("cityops"), await platform.post_record("gridworker")]
    for other in elsewhere:
        await expect(row(dispatcher, other)).to_have_count(0)  # triage tab: they were dispatched
    await dispatcher.page.locator("[data-queue=dispatched]").click()
    for other in elsewhere:
        await expect(row(dispatcher, other)).to_be_visible()
    await dispatcher.page.locator("[data-queue=triage]").click()

    # An uncategorised 12345 ticket arrives: the triage queue fills without a reload. 事件到达，队列实时更新。
    source_id = await platform.post_record(
        "12345", category_code=UNCATEGORISED, title="青溪镇来电：桥头流动摊贩占道（分类待定）"
    )
    await expect(row(dispatcher, source_id)).to_be_visible()
    await expect(dispatcher.page.locator("[data-queue=triage] .count")).to_have_attribute("data-count", str(before + 1))
    await expect(row(dispatcher, source_id).locator("[data-reason=uncategorised]")).to_have_text("无法定性")
    await expect(row(watcher, source_id)).to_have_count(0)  # 待签收 tab: not there yet
    assert await dispatcher.not_reloaded()
    await dispatcher.shot("02-queue-triage", doc=True)

    # The case view. 案件详情。
    await row(dispatcher, source_id).click()
    page = dispatcher.page
    await expect(page.locator(".case-head [data-case-state]")).to_have_attribute("data-case-state", "triage")
    source = page.locator("[data-card=source]")
    await expect(source).to_contain_text(source_id)
    await expect(source.locator("[data-caller=masked]")).to_contain_text("已脱敏")
    await expect(source.locator("[data-caller=masked]")).to_have_text(re.compile(r"^1\d{2}\*{4}\d{4}（已脱敏）$"))
    assert not MOBILE.search(await page.inner_text("body")), "a caller's phone number is visible"
    await expect(page.locator("[data-card=map] svg circle[data-point=case]")).to_have_count(1)
    await expect(page.locator("[data-card=map] svg path[data-code='330127101']")).to_have_count(1)
    await expect(page.locator("[data-card=explanation]")).to_contain_text("没有对应事项")
    timeline = page.locator("[data-card=timeline] [data-timeline] li")
    await expect(timeline).to_have_count(2)
    await expect(page.locator("[data-card=timeline] li[data-event='case.triage_required']")).to_contain_text("无法定性")
    verify = page.locator("[data-card=actions] [data-action=verify]")
    await expect(verify).to_have_attribute("data-allowed", "false")
    await expect(verify.locator("button")).to_be_disabled()
    await expect(verify.locator(".why")).to_have_text("案件待人工分拨，不能核查")
    await expect(page.locator("[data-card=actions] [data-action=supervise]")).to_have_attribute("data-allowed", "true")
    await expect(page.locator("[data-card=actions] [data-action=accept]")).to_have_count(0)  # not a dispatcher's

    # Manual dispatch: the routing suggestion comes first and is preselected. 人工分拨：系统建议排第一。
    assign = page.locator("[data-card=assign]")
    await expect(assign.locator("#assign-township")).to_have_value("330127101")
    await expect(assign.locator("[data-suggestion]")).to_contain_text("请先选择事项")
    await assign.locator("#assign-matter").select_option("SR001")  # 占道经营
    await expect(assign.locator("[data-suggestion]")).to_contain_text("系统建议：青溪镇综合行政执法队")
    await expect(assign.locator("#assign-unit")).to_have_value(QINGXI_ZFD)
    await expect(assign.locator("#assign-unit option").nth(1)).to_have_attribute("data-suggested", "1")
    await dispatcher.shot("03-case-triage-assign", doc=True)
    await assign.locator("button[data-submit=assign]").click()

    # It is dispatched: the case view, the timeline, and both browsers' queues follow. 派遣后各处实时更新。
    await expect(page.locator(".case-head [data-case-state]")).to_have_attribute("data-case-state", "dispatched")
    await expect(page.locator("[data-card=timeline] li[data-event='case.assigned']")).to_contain_text("手动派遣")
    await expect(page.locator("[data-card=status]")).to_contain_text("青溪镇综合行政执法队")
    await expect(page.locator("[data-card=status] [data-countdown]")).to_contain_text("剩余")
    await expect(row(watcher, source_id)).to_be_visible()  # the watcher's 待签收 list, live
    await expect(row(watcher, source_id)).to_contain_text("青溪镇综合行政执法队")
    for other in elsewhere:
        await expect(row(watcher, other)).to_have_count(0)  # 白沙街道, 枫林镇: outside 青溪镇
    assert await watcher.not_reloaded()
    await watcher.shot("04-queue-pending-live")

    await page.locator(".case-head a", has_text="返回队列").click()
    await expect(row(dispatcher, source_id)).to_have_count(0)  # gone from triage
    await expect(page.locator("[data-queue=triage] .count")).to_have_attribute("data-count", str(before))
    await page.locator("[data-queue=dispatched]").click()
    await expect(row(dispatcher, source_id)).to_be_visible()
    await expect(row(dispatcher, source_id).locator(".badge")).to_contain_text("已派遣")
    assert await dispatcher.not_reloaded()
    await dispatcher.shot("05-queue-pending", doc=True)

    # Open the timeline again from the queue. 从队列再次打开时间线。
    await row(dispatcher, source_id).click()
    events = page.locator("[data-card=timeline] [data-timeline] li")
    await expect(events).to_have_count(3)
    await expect(events.nth(2)).to_contain_text("手动派遣")
    await expect(events.nth(2)).to_contain_text("派遣员")
    await dispatcher.shot("06-case-timeline", doc=True)


async def test_unit_sees_its_scope_and_signs_for_its_case(new_session: NewSession, platform: Platform) -> None:
    ours = await platform.post_record("12345")  # 青溪镇 占道经营 → 青溪镇综合行政执法队
    theirs = await platform.post_record("cityops")  # 白沙街道 暴露垃圾 → 白沙街道综合行政执法队
    case = await platform.case_by_source_id(ours)
    await platform.case_by_source_id(theirs)
    assert case["unit"] == QINGXI_ZFD, case

    unit = await new_session()
    await unit.open()
    await unit.sign_in("u-qx-zfd")
    await expect(unit.page.locator("#scope")).to_have_text("处置单位 · 青溪镇综合行政执法队")
    await expect(unit.page.locator("[data-queue=triage]")).to_have_count(0)  # not a unit's queue
    await expect(unit.page.locator("[data-queue=dispatched]")).to_have_class(re.compile(r"\bactive\b"))
    await expect(row(unit, ours)).to_be_visible()
    await expect(row(unit, theirs)).to_have_count(0)  # another unit's case is out of scope

    await row(unit, ours).click()
    page = unit.page
    actions = page.locator("[data-card=actions]")
    await expect(actions.locator("[data-action=accept]")).to_have_attribute("data-allowed", "true")
    await expect(actions.locator("[data-action=resolve] .why")).to_have_text("案件已派遣，不能办结")
    await expect(actions.locator("[data-action=verify]")).to_have_count(0)  # a dispatcher's action
    await unit.shot("07-case-unit", doc=True)

    await actions.locator("[data-action=accept] button").click()
    await expect(page.locator("#dialog")).to_be_visible()
    await page.locator("#dialog button[data-submit=accept]").click()
    await expect(page.locator(".case-head [data-case-state]")).to_have_attribute("data-case-state", "accepted")
    await expect(actions.locator("[data-action=resolve]")).to_have_attribute("data-allowed", "true")
    await expect(actions.locator("[data-action=accept] .why")).to_have_text("案件已签收，不能签收")

    await actions.locator("[data-action=resolve] button").click()
    await page.fill("#dialog textarea[name=result]", "已劝离流动摊贩，现场恢复通行。")
    await page.locator("#dialog button[data-submit=resolve]").click()
    await expect(page.locator(".case-head [data-case-state]")).to_have_attribute("data-case-state", "resolved")
    await expect(page.locator("[data-card=timeline] li[data-event='case.resolved']")).to_contain_text("已劝离")

    # The dispatcher finds it under 待核查. 派遣员在“待核查”中看到它。
    dispatcher = await new_session()
    await dispatcher.open("#/queues/verify")
    await dispatcher.sign_in("t-disp")
    await expect(row(dispatcher, ours)).to_be_visible()


async def test_manual_dispatch_flags_the_units_that_rejected(new_session: NewSession, platform: Platform) -> None:
    """Rejected by the devolved unit and then by the county department: triage, nothing left to suggest.

    属地单位与县级部门先后退单：转人工分拨，无可建议单位，两个退单单位在列表中不可选。
    """
    source_id = await platform.post_record("12345")
    case = await platform.case_by_source_id(source_id)
    assert case["unit"] == QINGXI_ZFD, case
    await platform.act(case["id"], "reject", "u-qx-zfd", reason="桥面属城管局管辖")
    await platform.act(case["id"], "reject", "u-cgj", reason="属地问题，应由镇里处理")

    session = await new_session()
    await session.open(f"#/case/{case['id']}")
    await session.sign_in("t-disp")
    page = session.page
    await expect(page.locator(".case-head [data-case-state]")).to_have_attribute("data-case-state", "triage")
    assign = page.locator("[data-card=assign]")
    await expect(assign.locator("[data-suggestion]")).to_contain_text("无可用的建议单位")
    for unit_id in (QINGXI_ZFD, "dept-cgj"):
        option = assign.locator(f"#assign-unit option[value='{unit_id}']")
        await expect(option).to_be_disabled()
        await expect(option).to_contain_text("已退单")
    await expect(assign.locator("#assign-unit option[data-suggested]")).to_have_count(0)
    # Another township's unit is still offered, and the server's refusal reasons show as text. 其他单位仍可选。
    await expect(assign.locator("#assign-unit option[value='330127101-yjgl']")).to_be_enabled()
    rule = page.locator("[data-card=actions] [data-action=rule_rejection]")
    await expect(rule).to_have_attribute("data-allowed", "true")
    await expect(page.locator("[data-card=actions] [data-action=close] .why")).to_have_text("案件待人工分拨，不能结案")
    await session.shot("10-case-assign-rejected")


async def test_callback_queue_lists_closed_hotline_cases_until_the_callback(
    new_session: NewSession, platform: Platform
) -> None:
    source_id = await platform.post_record("12345")
    case = await platform.case_by_source_id(source_id)
    await platform.act(case["id"], "accept", "u-qx-zfd")
    await platform.act(case["id"], "resolve", "u-qx-zfd", result="已劝离流动摊贩。")

    session = await new_session()
    await session.open("#/queues/callback")
    await session.sign_in("t-disp")
    await expect(row(session, source_id)).to_have_count(0)  # resolved, not closed yet
    await session.mark()
    await platform.act(case["id"], "verify", "t-disp", passed=True, note="核查属实")
    await expect(row(session, source_id)).to_be_visible()  # closed: waits for its callback, live
    await expect(row(session, source_id).locator(".badge")).to_contain_text("已结案")
    await session.shot("11-queue-callback")
    await platform.act(case["id"], "callback", "t-hotline", satisfaction="satisfied", solved=True)
    await expect(row(session, source_id)).to_have_count(0)
    assert await session.not_reloaded()


async def seed_handled_cases(platform: Platform, n: int = 6) -> None:
    """``n`` cases for 青溪镇综合行政执法队, most handled, so the ranking has a scored, graded row.

    为青溪镇综合行政执法队准备若干已办理案件，使排名中出现已评分、有等级的行。
    """
    source_ids = [await platform.post_record("12345") for _ in range(n)]
    for i, source_id in enumerate(source_ids):
        case = await platform.case_by_source_id(source_id)
        if i == n - 1:
            continue  # one stays 待签收
        await platform.act(case["id"], "accept", "u-qx-zfd")
        if i < n - 2:
            await platform.act(case["id"], "resolve", "u-qx-zfd", result="已处理完毕，现场已恢复。")
        if i < 2:
            await platform.act(case["id"], "verify", "t-disp", passed=True, note="核查属实")

    async def scored() -> bool:
        response = await platform.http.get(
            f"{platform.metrics.url}/v1/scores/cityops_professional/{period_id()}",
            headers={"Authorization": "Bearer t-admin"},
        )
        rows = response.json().get("rows", []) if response.status_code == 200 else []
        return any(r["unit"] == QINGXI_ZFD and r.get("grade") for r in rows)

    await eventually(scored, timeout_s=30)


def period_id() -> str:
    return datetime.now(SHANGHAI).strftime("%Y-%m")


async def test_performance_view_and_xlsx_download(new_session: NewSession, platform: Platform) -> None:
    await seed_handled_cases(platform)
    session = await new_session()
    await session.open("#/perf")
    await session.sign_in("t-disp")
    page = session.page
    await expect(page.locator("#perf-scheme option")).not_to_have_count(0)
    await expect(page.locator("#perf-scheme option").first).not_to_have_text("正在加载方案…")
    await expect(page.locator("[data-card=ranking] .card-head")).to_contain_text("考核排名 · ")
    await expect(page.locator("[data-kpi=dispatched] .v")).to_have_text(re.compile(r"^\d+$"))
    await expect(page.locator("[data-chart=overdue-trend] svg")).to_have_count(1)
    await expect(page.locator("[data-chart=handling]")).not_to_contain_text("正在加载")
    await page.locator("#perf-scheme").select_option("cityops_professional")
    ranked = page.locator(f"[data-table=ranking] tr[data-unit='{QINGXI_ZFD}']")
    await expect(ranked).to_contain_text("青溪镇综合行政执法队")
    await expect(ranked.locator(".badge")).to_have_text(re.compile(r"^[A-E]$"))
    await expect(page.locator("[data-chart=handling] svg rect")).not_to_have_count(0)
    await session.shot("08-performance", doc=True)

    async with page.expect_download() as info:
        await page.locator("button[data-download=xlsx]").click()
    download = await info.value
    assert download.suggested_filename.endswith(".xlsx"), download.suggested_filename
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    saved = ARTIFACTS / f"ranking-{download.suggested_filename}"
    await download.save_as(saved)
    workbook = load_workbook(io.BytesIO(saved.read_bytes()), read_only=True)
    cells = [str(c) for sheet in workbook.worksheets for r in sheet.iter_rows(values_only=True) for c in r if c]
    assert "单位名称" in cells and "等级" in cells, cells[:40]


async def test_map_falls_back_when_the_boundaries_cannot_load(new_session: NewSession, platform: Platform) -> None:
    source_id = await platform.post_record("gridworker")
    case = await platform.case_by_source_id(source_id)
    session = await new_session()

    async def refuse(route: Route) -> None:
        await route.fulfill(status=502, json={"detail": "网格服务暂不可达"})

    await session.page.route("**/dashboard/api/grid/**", refuse)
    await session.open(f"#/case/{case['id']}")
    await session.sign_in("t-disp")
    page = session.page
    fallback = page.locator("[data-card=map] [data-map=fallback]")
    await expect(fallback).to_contain_text("辖区底图暂不可用")
    await expect(fallback).to_contain_text("WGS-84")
    await expect(page.locator("[data-card=timeline] [data-timeline] li")).not_to_have_count(0)
    await expect(page.locator("[data-card=status]")).to_contain_text(case["unit"])  # the code, without names
    await session.shot("09-map-fallback")


async def test_working_time_countdown_rules_in_the_browser(new_session: NewSession, platform: Platform) -> None:
    """worktime.js in Chromium: working hours skip nights, weekends and holidays; 即将超期 below 20 %."""
    session = await new_session()
    await session.open()
    result = await session.page.evaluate(
        """async () => {
        const m = await import("./js/worktime.js");
        const cal = new m.WorkCalendar({
          working_hours: [["08:30", "12:00"], ["13:30", "17:30"]],
          working_days: ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27"],  // 26th: a local holiday
          from: "2026-11-20", to: "2026-11-30",
        });
        const at = (s) => new Date(s);
        const kase = (over) => ({ state: "accepted", time_basis: "working", overdue: false,
          dispatched_at: "2026-11-23T08:30:00+08:00", deadline: "2026-11-25T17:30:00+08:00", ...over });
        return {
          day: cal.hoursBetween("2026-11-24T07:00:00+08:00", "2026-11-24T19:00:00+08:00"),
          lunch: cal.hoursBetween("2026-11-24T11:00:00+08:00", "2026-11-24T14:00:00+08:00"),
          weekend: cal.hoursBetween("2026-11-21T08:00:00+08:00", "2026-11-23T10:30:00+08:00"),
          holiday: cal.hoursBetween("2026-11-25T17:00:00+08:00", "2026-11-27T09:30:00+08:00"),
          back: cal.hoursBetween("2026-11-24T12:00:00+08:00", "2026-11-24T08:30:00+08:00"),
          ok: m.deadlineStatus(kase({}), cal, at("2026-11-24T08:30:00+08:00")),
          soon: m.deadlineStatus(kase({}), cal, at("2026-11-25T15:00:00+08:00")),
          over: m.deadlineStatus(kase({}), cal, at("2026-11-27T09:30:00+08:00")),
          flagged: m.deadlineStatus(kase({ overdue: true }), cal, at("2026-11-24T09:00:00+08:00")),
          natural: m.deadlineStatus(kase({ time_basis: "natural" }), cal, at("2026-11-24T09:30:00+08:00")),
          none: m.deadlineStatus(kase({ deadline: null }), cal, at("2026-11-24T09:00:00+08:00")),
        };
    }"""
    )
    assert result["day"] == 7.5 and result["lunch"] == 1.5 and result["weekend"] == 2.0
    assert result["holiday"] == 1.5  # 17:00–17:30 on the 25th, 08:30–09:30 on the 27th
    assert result["back"] == -3.5
    assert result["ok"]["kind"] == "ok" and result["ok"]["text"] == "剩余 2 个工作日"
    assert result["soon"]["kind"] == "soon" and result["soon"]["text"] == "剩余 2.5 工作小时"  # 2.5 of 22.5 h
    assert result["over"]["kind"] == "over" and result["over"]["text"] == "已超期 1.0 工作小时"
    assert result["flagged"]["kind"] == "over"
    assert result["natural"]["kind"] == "ok" and result["natural"]["text"] == "剩余 1 天 8.0 小时"  # 32 of 57 h
    assert result["none"]["kind"] == "none"


async def test_accountability_view_and_xlsx_download(new_session: NewSession, platform: Platform) -> None:
    session = await new_session()
    await session.open("#/accountability")
    await session.sign_in("t-disp")
    page = session.page
    await expect(page.locator("[data-nav=accountability]")).to_be_visible()
    await expect(page.locator("[data-card=accountability] .card-head")).to_contain_text("监督问责 · ")
    await page.locator("#acc-period").select_option(period_id())
    await expect(page.locator("[data-card=accountability] .card-head")).to_contain_text(period_id())
    # Either the findings table or the empty state, never an error or a spinner.
    body = page.locator("[data-card=accountability] .card-body")
    await expect(body).not_to_contain_text("正在加载")
    await expect(body.locator(".error-box")).to_have_count(0)
    await expect(page.locator("[data-card=accountability]")).to_contain_text("联合执法")
    async with page.expect_download() as info:
        await page.locator("button[data-download=xlsx]").click()
    download = await info.value
    assert download.suggested_filename.endswith(".xlsx"), download.suggested_filename

    unit = await new_session()
    await unit.open()
    await unit.sign_in("u-qx-zfd")
    await expect(unit.page.locator("#scope")).to_contain_text("处置单位")
    await expect(unit.page.locator("[data-nav=accountability]")).to_be_hidden()
