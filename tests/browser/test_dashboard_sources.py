"""审批办件 and 监测告警 on the dashboard, in a real browser (Debian Chromium via Playwright) against the real
services: the queue filter by source and kind, an alarm burst as one case with its occurrence count and
snapshot, 复核 of a low-confidence alarm, marking it invalid (误报) with a reason from the list, and a
supervision task showing its approval. Screenshots: test-artifacts/browser/.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Session
from tests.browser.stack import Platform
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(240)

NewSession = Callable[..., Awaitable[Session]]
#: A snapshot picture the page may show (the dashboard's CSP allows its own origin and data: images).
SNAPSHOT = (
    "data:image/svg+xml;base64,PHN2ZyB4bWxucz0naHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmcnIHdpZHRoPSc4MCcgaGVpZ2h0"
    "PSc0MCc+PHJlY3Qgd2lkdGg9JzgwJyBoZWlnaHQ9JzQwJyBmaWxsPScjODg4Jy8+PC9zdmc+"
)


def row(session: Session, source_id: str):  # type: ignore[no-untyped-def]
    return session.page.locator("tr[data-case-id]", has_text=source_id)


async def test_alarm_burst_review_invalid_and_a_supervision_task(new_session: NewSession, platform: Platform) -> None:
    dispatcher = await new_session()
    await dispatcher.open()
    await dispatcher.sign_in("t-disp")

    # Three low-confidence alarms of one camera: one case in 复核 (triage), counted three times.
    device = f"CAM-{uuid.uuid4().hex[:6]}"
    burst = [
        await platform.post_record("alarm", device_id=device, confidence=0.35, snapshot_url=SNAPSHOT)
        for _ in range(3)
    ]
    assert len(burst) == 3

    async def counted() -> str | None:
        """The source id of the camera's case once it counts all three (any of them may have opened it)."""
        response = await platform.http.get(
            f"{platform.dispatch.url}/v1/cases", params={"source": "alarm", "limit": 500},
            headers={"Authorization": "Bearer t-admin"},
        )
        mine = [c for c in response.json()["items"] if c["device_id"] == device]
        return mine[0]["source_id"] if len(mine) == 1 and mine[0]["occurrences"] == 3 else None

    first = await eventually(counted, timeout_s=30, every_s=0.3)
    alarm_row = row(dispatcher, first)
    await expect(alarm_row).to_be_visible()
    await expect(alarm_row.locator("[data-reason=low_confidence]")).to_have_text("置信度低，人工复核")
    await expect(alarm_row.locator("[data-occurrences]")).to_have_text("告警 ×3")

    # The queue filter: by source and by kind. 队列筛选：来源、类型。
    await dispatcher.page.select_option("select[data-filter=source]", "approval")
    await expect(alarm_row).to_have_count(0)
    await dispatcher.page.select_option("select[data-filter=source]", "alarm")
    await expect(alarm_row).to_be_visible()
    await dispatcher.page.select_option("select[data-filter=kind]", "inspection")
    await expect(alarm_row).to_have_count(0)
    await dispatcher.page.select_option("select[data-filter=kind]", "")
    await dispatcher.shot("sources-01-queue-alarm")

    # The alarm's case: device, snapshot, occurrences; then 不予立案/作废 as 误报 with its reason.
    await alarm_row.click()
    page = dispatcher.page
    alarm = page.locator("[data-card=source] [data-alarm]")
    await expect(alarm).to_contain_text(device)
    await expect(alarm.locator("[data-occurrences]")).to_have_text("3 次")
    await expect(alarm.locator("img[data-snapshot]")).to_have_count(1)
    await dispatcher.shot("sources-02-case-alarm")
    await page.locator("[data-card=actions] [data-action=mark_invalid] button").click()
    await expect(page.locator("#dialog select[name=reason] option")).to_have_count(5)
    await page.select_option("#dialog select[name=reason]", "false_alarm")
    await page.fill("#dialog textarea[name=note]", "树影误识别")
    await page.locator("#dialog button[data-submit=mark_invalid]").click()
    await expect(page.locator(".case-head [data-case-state]")).to_have_attribute("data-case-state", "closed")
    await expect(page.locator("[data-card=source] [data-invalid=false_alarm]")).to_contain_text("误报")
    await expect(page.locator("[data-card=timeline] li[data-event='case.invalidated']")).to_contain_text("作废")

    # An approval's supervision task shows its approval. 监管任务显示其审批办件。
    approval = await platform.post_record("approval")
    task = await platform.case_by_source_id(approval)
    await dispatcher.open(f"#/case/{task['id']}")
    facts = page.locator("[data-card=source] [data-approval]")
    await expect(facts).to_contain_text("食品经营许可")
    await expect(facts).to_contain_text(re.compile("附条件准予"))
    await expect(page.locator("[data-card=source] [data-kind=inspection]")).to_have_text("监管任务")
    await dispatcher.shot("sources-03-case-supervision")
    assert not dispatcher.foreign_requests, dispatcher.foreign_requests
