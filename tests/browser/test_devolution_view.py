"""The 下放调整 view in a real browser (Debian Chromium via Playwright) against the real services.

下放调整页面真实浏览器测试：查看带日期的下放清单；从事项清单组成提案、模拟、查看改派与负荷、导出 xlsx；
管理员登记调整决定；处置单位看不到此页。
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import pytest
from openpyxl import load_workbook
from playwright.async_api import expect

from shared.calendar import SHANGHAI
from tests.browser.conftest import Session
from tests.browser.stack import Platform

pytestmark = pytest.mark.timeout(240)

NewSession = Callable[..., Awaitable[Session]]
QINGXI = "330127101"
FENGLIN = "330127102"


async def test_compose_a_proposal_simulate_download_and_record(new_session: NewSession, platform: Platform) -> None:
    # Two 12345 tickets today: 占道经营 at 青溪镇 → 青溪镇综合行政执法队 (devolved).
    posted = [await platform.post_record("12345") for _ in range(2)]
    for source_id in posted:
        case = await platform.case_by_source_id(source_id)
        assert case["unit"] == "330127101-zfd" and case["matter"] == "SR001"
    today = datetime.now(SHANGHAI).date()

    session = await new_session()
    await session.open("#/devolution")
    await session.sign_in("t-disp")
    page = session.page
    await expect(page.locator("[data-nav=devolution]")).to_be_visible()
    # The demo county's dated history: the entrusted 销售过期食品 and the returned 小作坊安全隐患.
    history = page.locator("[data-table=devolution-history]")
    await expect(history).to_contain_text("青市监〔2026〕12号")
    await expect(history.locator("tr[data-matter=AQ005]")).to_contain_text("2026-09-01 收回")
    await expect(history.locator("tr[data-matter=SC004] [data-mode=entrusted]")).to_have_text("委托")

    # Compose: 青溪镇 returns 占道经营 (SR001) — over today's period.
    await page.locator("#dv-township").select_option(QINGXI)
    await page.locator("#dv-matter").select_option("SR001")
    await page.locator("#dv-mode").select_option("none")
    await page.locator("button[data-action=add]").click()
    await expect(page.locator("[data-table=proposal] tbody tr")).to_have_count(1)
    await page.locator("#dv-from").fill(today.isoformat())
    await page.locator("#dv-to").fill(today.isoformat())
    await page.locator("#dv-threshold").fill("5")
    await page.locator("button[data-action=simulate]").click()
    moves = page.locator("[data-table=moves] tr[data-matter=SR001]")
    await expect(moves).to_contain_text("青溪镇综合行政执法队")
    await expect(moves).to_contain_text("青溪县城市管理局")
    await expect(page.locator("[data-summary=whatif]")).to_contain_text("改派")
    await expect(page.locator(f"[data-table=townships] tr[data-township=\"{QINGXI}\"]")).to_have_attribute(
        "data-over", "false"
    )
    await page.locator("[data-card=whatif]").scroll_into_view_if_needed()
    await session.shot("devolution-whatif", doc=True)

    async with page.expect_download() as info:
        await page.locator("button[data-download=whatif-xlsx]").click()
    download = await info.value
    assert download.suggested_filename.endswith(".xlsx")
    path = await download.path()
    book = load_workbook(io.BytesIO(path.read_bytes()))
    assert book.sheetnames == ["提案", "改派", "单位负荷", "镇街负荷"]

    # A dispatcher cannot record a decision; an admin can, with its 文号 and a day after today.
    await expect(page.locator("[data-admin=record]")).to_have_count(0)
    admin = await new_session()
    await admin.open("#/devolution")
    await admin.sign_in("t-admin")
    apage = admin.page
    await apage.locator("#dv-township").select_option(FENGLIN)
    await apage.locator("#dv-matter").select_option("SC002")
    await apage.locator("#dv-mode").select_option("entrusted")
    await apage.locator("button[data-action=add]").click()
    await apage.locator("#dv-document").fill("青政发〔2026〕77号")
    await apage.locator("#dv-effective").fill((today + timedelta(days=20)).isoformat())
    await apage.locator("button[data-action=record]").click()
    row = apage.locator(f"[data-table=devolution-history] tr[data-township=\"{FENGLIN}\"][data-matter=SC002]")
    await expect(row).to_contain_text("青政发〔2026〕77号")
    await expect(row.locator("[data-mode=entrusted]")).to_have_text("委托")


async def test_units_and_township_dispatchers_do_not_see_the_view(new_session: NewSession) -> None:
    unit = await new_session()
    await unit.open()
    await unit.sign_in("u-qx-zfd")
    await expect(unit.page.locator("#scope")).to_contain_text("处置单位")
    await expect(unit.page.locator("[data-nav=devolution]")).to_be_hidden()
    township = await new_session()
    await township.open()
    await township.sign_in("t-disp-qx")  # a what-if covers the whole county 模拟覆盖全县
    await expect(township.page.locator("#scope")).to_contain_text("青溪镇")
    await expect(township.page.locator("[data-nav=devolution]")).to_be_hidden()
