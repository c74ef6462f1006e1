"""力量调度 in the dashboard, in a real browser (Debian Chromium via Playwright) against the real services:
on-duty forces with fresh positions on the map (a stale one left off), a case's suggestions with one-click
派单到人 (recorded on the timeline), and the joint operations view where a unit confirms (报到, late).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.async_api import Dialog, expect

from tests.browser.conftest import Session
from tests.browser.stack import Platform

pytestmark = pytest.mark.timeout(240)

NewSession = Callable[..., Awaitable[Session]]
ROOT = Path(__file__).resolve().parents[2]
FORCES = orjson.loads((ROOT / "deploy" / "demo" / "forces.json").read_bytes())
ZFD = "330127101-zfd"
M2, M3 = f"{ZFD}-m02", f"{ZFD}-m03"


async def call(platform: Platform, method: str, path: str, token: str, body: Any = None) -> Any:
    response = await platform.http.request(method, f"{platform.dispatch.url}{path}", json=body,
                                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert response.status_code < 300, (path, response.text)
    return response.json()


async def test_forces_map_suggestions_assign_and_joint_operation(new_session: NewSession, platform: Platform) -> None:
    await call(platform, "PUT", "/v1/forces/330127", "t-admin", FORCES)
    members = [m["member_id"] for m in FORCES["members"] if m["unit"] == ZFD]
    everyone = [{"unit": ZFD, "label": "全天", "start": "00:00", "end": "00:00", "members": members}]
    await call(platform, "PUT", "/v1/forces/330127/rosters", "t-admin", {"shifts": everyone})
    source_id = await platform.post_record("12345")
    case = await platform.case_by_source_id(source_id)
    assert case["unit"] == ZFD, case
    await platform.act(case["id"], "accept", "u-qx-zfd")
    detail = await call(platform, "GET", f"/v1/cases/{case['id']}", "t-admin")
    point = detail["incident"]["location"]
    now = datetime.now(UTC)
    fixes = [
        {"member_id": M2, "at": now.isoformat(), "lng": point["lng"] + 0.001, "lat": point["lat"]},
        {"member_id": M3, "at": (now - timedelta(minutes=40)).isoformat(), "lng": point["lng"], "lat": point["lat"]},
    ]
    assert (await call(platform, "POST", "/v1/forces/positions", "u-qx-zfd", {"positions": fixes}))["stored"] == 2

    dispatcher = await new_session()
    await dispatcher.open("#/forces")
    await dispatcher.sign_in("t-disp")
    page = dispatcher.page
    await expect(page.locator(f"[data-map=forces] circle[data-force='{M2}']")).to_have_count(1)
    await expect(page.locator(f"[data-map=forces] circle[data-force='{M3}']")).to_have_count(0)  # 40 min old
    await expect(page.locator(f"[data-forces=list] tr[data-member='{M2}']")).to_contain_text("可派")
    await dispatcher.shot("forces-map")

    await dispatcher.open(f"#/case/{case['id']}")
    card = page.locator("[data-card=suggestions]")
    await expect(card.locator("[data-suggestions=loaded]")).to_have_count(1)
    first = card.locator("li.suggestion").first
    await expect(first).to_have_attribute("data-suggestion-id", M2)
    await expect(first).to_contain_text("米")
    await first.locator(f"button[data-assign='{M2}']").click()
    await expect(page.locator("[data-card=timeline] li[data-event='case.member_assigned']")).to_have_count(1)
    await expect(card.locator(f"[data-assignee='{M2}']")).to_be_visible()
    await dispatcher.shot("forces-case-assigned")

    # The member sees its task (and nothing else) and may resolve it; no 监督问责 for a member.
    member = await new_session()
    await member.open("#/queues/handling")
    await member.sign_in("m-qx-zfd-02")
    await expect(member.page.locator("#scope")).to_contain_text("队员")
    await expect(member.page.locator("[data-nav=accountability]")).to_be_hidden()
    await expect(member.page.locator("tr[data-case-id]")).to_have_count(1)
    await member.page.locator("tr[data-case-id]", has_text=source_id).click()
    actions = member.page.locator("[data-card=actions]")
    await expect(actions.locator("[data-action=resolve]")).to_have_attribute("data-allowed", "true")

    spec = {"township": "330127101", "lead_unit": ZFD, "units": ["pz-pcs-qingxi"], "place": "青溪镇桥头菜场",
            "starts_at": (now - timedelta(minutes=5)).isoformat(), "ends_at": (now + timedelta(hours=2)).isoformat(),
            "cases": [case["id"]]}  # fmt: skip
    op = await call(platform, "POST", "/v1/forces/operations", "t-disp-qx", spec)
    unit = await new_session()
    await unit.open("#/forces")
    await unit.sign_in("u-qx-zfd")
    row = unit.page.locator(f"tr[data-operation='{op['id']}']")
    await expect(row.locator("td[data-confirmed]")).to_have_text("0/2")

    async def answer(dialog: Dialog) -> None:
        await dialog.accept(M2)

    unit.page.once("dialog", answer)
    await row.locator(f"button[data-confirm='{op['id']}']").click()
    await expect(row.locator("td[data-confirmed]")).to_have_text("1/2")
    await expect(row).to_contain_text("迟到")
    await expect(row).to_contain_text("未报到")  # the police station has not confirmed yet
    await unit.shot("forces-operations")
