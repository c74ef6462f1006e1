"""The 监督问责 view's 联合执法未报到 section in a real browser (Debian Chromium via Playwright) against the real
services: a joint operation that started five minutes ago, one unit confirming (late) and two never (absent
at the conclusion), shows up in this month's report, each row linking to the operation and its case.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.async_api import expect

from shared.calendar import SHANGHAI
from tests.browser.conftest import Session
from tests.browser.stack import Platform
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(240)

NewSession = Callable[..., Awaitable[Session]]
ROOT = Path(__file__).resolve().parents[2]
FORCES = orjson.loads((ROOT / "deploy" / "demo" / "forces.json").read_bytes())
ZFD, PCS, YJGL = "330127101-zfd", "pz-pcs-qingxi", "330127101-yjgl"


async def call(platform: Platform, method: str, path: str, token: str, body: Any = None) -> Any:
    response = await platform.http.request(method, f"{platform.dispatch.url}{path}", json=body,
                                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert response.status_code < 300, (path, response.text)
    return response.json()


async def test_the_joint_operation_section_lists_late_and_absent_units(
    new_session: NewSession, platform: Platform
) -> None:
    await call(platform, "PUT", "/v1/forces/330127", "t-admin", FORCES)
    case = await platform.case_by_source_id(await platform.post_record("12345"))
    now = datetime.now(UTC)
    spec = {
        "township": "330127101", "lead_unit": ZFD, "units": [PCS, YJGL],
        "starts_at": (now - timedelta(minutes=5)).isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat(),
        "place": "青溪镇桥头菜场", "cases": [case["id"]], "note": "占道经营联合整治",
    }  # fmt: skip
    op = await call(platform, "POST", "/v1/forces/operations", "t-disp", spec)
    oid = op["id"]
    await call(platform, "POST", f"/v1/forces/operations/{oid}/confirm", "t-admin",
               {"expected_version": 1, "unit": PCS, "people": ["pcs-1"]})  # fmt: skip  # the admin, for the station
    done = await call(platform, "POST", f"/v1/forces/operations/{oid}/conclude", "t-disp",
                      {"expected_version": 2, "result": "已整治", "apply": "leave"})  # fmt: skip
    assert done["absent"] == [ZFD, YJGL]
    period = datetime.now(SHANGHAI).strftime("%Y-%m")

    async def in_metrics() -> bool:  # the view loads once: open it when metrics has the operation
        r = await platform.http.get(f"{platform.metrics.url}/v1/accountability", params={"period": period},
                                    headers={"Authorization": "Bearer t-disp"})  # fmt: skip
        ops = {o["operation_id"] for f in r.json()["findings"] for o in f.get("operations", [])}
        return oid in ops

    await eventually(in_metrics, timeout_s=60, every_s=0.3)

    session = await new_session()
    await session.open("#/accountability")
    await session.sign_in("t-disp")
    page = session.page
    await page.locator("#acc-period").select_option(period)
    table = page.locator("[data-table=joint-operations]")
    late = table.locator(f"tr[data-kind=operation_late][data-unit='{PCS}']")
    await expect(late.locator(f"li[data-operation='{oid}']")).to_have_count(1)  # arrives once metrics has it
    await expect(late.locator(f"li[data-operation='{oid}'] a[data-case='{case['id']}']")).to_have_count(1)
    for absent in (ZFD, YJGL):
        row = table.locator(f"tr[data-kind=operation_absent][data-unit='{absent}']")
        await expect(row.locator(f"li[data-operation='{oid}']")).to_have_count(1)
        await expect(row).to_contain_text("联合执法未报到（缺席）")
    await expect(page.locator("[data-card=accountability]")).not_to_contain_text("暂不统计")
    await session.shot("accountability-joint-operations")
