"""Loading the 2027 holiday notice 载入 2027 年放假通知 recomputes open cases' provisional deadlines.

Real grid, intake and dispatch over PostgreSQL and a broker: two 12345 一般件 (5 working days) are
dispatched on Thu 2027-09-30 10:00, while 2027 is still provisional (statutory holidays only: 国庆
10/1–10/5 off → due Tue 10/12 10:00). The operator adds a notice for 2027 to the override file (国庆
10/1–10/7 off, Sat 10/9 a make-up working day) and asks dispatch to load it: both deadlines become
Wed 10/13 10:00 (10/8, 10/9, 10/11, 10/12, 10/13; arithmetic in tests/unit/test_deadline_recompute.py),
final, each with one timeline entry and one ``case.deadline_recomputed`` event. Loading it again
changes nothing. The notice is written for the test; the real 2027 notice is not published yet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from shared.calendar import SHANGHAI
from shared.embedded import TansuBroker
from tests.helpers import eventually
from tests.integration.test_dispatch_overdue import create_as_of, incident
from tests.integration.test_dispatch_support import ADMIN, DISPATCHER, Stack, case_events, platform

START = datetime(2027, 9, 30, 10, 0, tzinfo=SHANGHAI)
NOTICE = """
default:
  working_hours: [["08:30", "12:00"], ["13:30", "17:30"]]
notices:
  2027:
    document: 测试用通知（test notice）
    rest_days: ["2027-10-01", "2027-10-02", "2027-10-03", "2027-10-04", "2027-10-05", "2027-10-06", "2027-10-07"]
    working_days: ["2027-09-26", "2027-10-09"]
"""


@pytest.fixture(scope="module")
async def stack(database_url: str, module_broker: TansuBroker) -> AsyncIterator[Stack]:
    async with platform(database_url, module_broker.bootstrap) as s:
        yield s


async def test_loading_the_notice_recomputes_deadlines_once(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 占道经营 (12345 一般件, 5 working days) at two spots of 青溪镇
    ids = await create_as_of(stack, [incident("010101", 119.05 + i * 0.003, 29.60, START) for i in range(2)], START)
    before = (await stack.dispatch.get(f"/v1/cases/{ids[0]}", headers=ADMIN)).json()
    assert (before["deadline"], before["provisional"]) == ("2027-10-12T10:00:00+08:00", True)

    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(NOTICE, encoding="utf-8")
    monkeypatch.setenv("CALENDAR_OVERRIDES", str(overrides))
    assert (await stack.dispatch.post("/v1/admin/calendar/reload", headers=DISPATCHER)).status_code == 403
    loaded = await stack.dispatch.post("/v1/admin/calendar/reload", headers=ADMIN)
    assert loaded.status_code == 200, loaded.text
    body = loaded.json()
    assert body["years"]["2027"] == "notice"
    assert (body["recomputed"], sorted(body["cases"])) == (2, sorted(str(i) for i in ids))

    for case_id in ids:
        after = (await stack.dispatch.get(f"/v1/cases/{case_id}", headers=ADMIN)).json()
        final = ("2027-10-13T10:00:00+08:00", False, False)
        assert (after["deadline"], after["provisional"], after["overdue"]) == final
    timeline = (await stack.dispatch.get(f"/v1/cases/{ids[0]}/timeline", headers=ADMIN)).json()["entries"]
    recomputed = [e for e in timeline if e["event_type"] == "case.deadline_recomputed"]
    assert len(recomputed) == 1 and recomputed[0]["actor_role"] == "system"
    assert "2027-10-12T10:00+08:00 → 2027-10-13T10:00+08:00" in recomputed[0]["note"]

    # the same notice again: nothing changes, no second entry
    again = await stack.dispatch.post("/v1/admin/calendar/reload", headers=ADMIN)
    assert again.status_code == 200 and again.json()["recomputed"] == 0
    rows = await stack.sql(
        "SELECT case_id, count(*) FROM dispatch.case_transitions WHERE event_type = 'case.deadline_recomputed' "
        "AND case_id = ANY(:ids) GROUP BY case_id",
        ids=ids,
    )
    assert sorted(n for _, n in rows) == [1, 1]

    # metrics hears of it: one case.deadline_recomputed per case, carrying the final deadline
    keys = {str(i) for i in ids}

    async def published() -> bool:
        events = await case_events(stack.bootstrap, keys, expect=0)
        return sum(1 for e in events if e.type == "case.deadline_recomputed") >= len(ids)

    await eventually(published, timeout_s=30)
    events = [e for e in await case_events(stack.bootstrap, keys, expect=0) if e.type == "case.deadline_recomputed"]
    assert len(events) == 2
    assert {(e.data.deadline.isoformat(), e.data.provisional) for e in events} == {("2027-10-13T10:00:00+08:00", False)}
