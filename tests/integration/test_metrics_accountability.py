"""监督问责 end to end: case events on a real broker → metrics → PostgreSQL → ``GET /v1/accountability``.

October 2026, townships T1 (units A, B) and T2 (unit C), county department GA. Each case is built so
that exactly one finding comes out of it (worked out beside each case); the report must list those
findings and nothing else, scoped by township, exported as xlsx, and frozen by the sign-off (a late
event for October changes the live inputs, not the signed-off report).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from services.metrics.app import create_app
from shared.embedded import TansuBroker
from tests.helpers import eventually, serve
from tests.integration.test_metrics_service import (
    GRID_UNITS,
    KINDS,
    CaseSim,
    bj,
    fake_grid,
    publish,
    scalar,
    settings_for,
)

ADMIN = {"Authorization": "Bearer t-admin"}
COUNTY = {"Authorization": "Bearer t-county"}
T1 = {"Authorization": "Bearer t-t1"}
T2 = {"Authorization": "Bearer t-t2"}
UNIT_A = {"Authorization": "Bearer t-unit-a"}


def dispatched(unit: str, township: str, day: int, *, deadline_day: int | None = None) -> CaseSim:
    sim = CaseSim(kinds=KINDS)
    at = bj(10, day)
    sim.emit(
        "case.dispatched",
        at,
        township=township,
        unit=unit,
        source="cityops",
        matter="暴露垃圾",
        matter_group="市容环境",
        urgency="normal",
        time_basis="working",
        reported_at=at - timedelta(hours=1),
        deadline=bj(10, deadline_day) if deadline_day else None,
        accept_deadline=None,
    )
    return sim


class Cases:
    def __init__(self) -> None:
        # A: three cases past their October deadline → repeated overdue (threshold 3).
        self.late1 = dispatched("A", "T1", 5, deadline_day=6)
        self.late1.emit("case.resolved", bj(10, 8))  # resolved two days late
        self.late2 = dispatched("A", "T1", 12, deadline_day=13)  # still open
        self.late3 = dispatched("A", "T1", 19, deadline_day=20)
        self.late3.emit("case.resolved", bj(10, 21))
        # B: its 退单 ruled invalid by the dispatcher → rejection overturned (B).
        self.bounced = dispatched("B", "T1", 14)
        self.bounced.emit("case.rejected", bj(10, 14, 11), state="rejected", rejected_unit="B", reason="不归我管")
        self.bounced.emit("case.rejection_ruled", bj(10, 14, 15), state="dispatched", rejected_unit="B",
                          rejection_valid=False)  # fmt: skip
        # Whistled to GA with a 报到 deadline of 10-10 17:30; GA reported in on 10-12 → not answered in time.
        self.whistle = dispatched("A", "T1", 8)
        self.whistle.emit("case.escalated", bj(10, 9, 10), unit="GA", department="GA",
                          details={"report_deadline": bj(10, 10, 17, 30).isoformat()})  # fmt: skip
        self.whistle.emit("case.reported_in", bj(10, 12, 9))
        # 督办 on Friday 10-09 10:00; one working day later is the make-up Saturday 10-10 10:00 (调休上班);
        # A only accepted on Monday 10-12 → supervision not acted on (A).
        self.ignored = dispatched("A", "T1", 9)
        self.ignored.emit("case.supervised", bj(10, 9, 10))
        self.ignored.emit("case.accepted", bj(10, 12, 9))
        # C: reopened on 10-05, then 核查 failed on 10-20 → reopened or reworked more than once (C).
        self.again = dispatched("C", "T2", 2)
        self.again.emit("case.resolved", bj(10, 3))
        self.again.emit("case.reopened", bj(10, 5), state="reopened", reason="回访不满意")
        self.again.emit("case.resolved", bj(10, 15))
        self.again.emit("case.verified", bj(10, 20), state="reopened", verification_passed=False)

    def all(self) -> list[CaseSim]:
        return [self.late1, self.late2, self.late3, self.bounced, self.whistle, self.ignored, self.again]


@pytest.fixture(scope="module")
def cases() -> Cases:
    return Cases()


@pytest.fixture(scope="module")
async def client(database_url: str, module_broker: TansuBroker, cases: Cases) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(database_url, module_broker.bootstrap), grid_transport=fake_grid(GRID_UNITS))
    async with serve(app) as c:
        envelopes = [env for sim in cases.all() for env in sim.envelopes]
        await publish(module_broker.bootstrap, envelopes)

        async def all_consumed() -> bool:
            return bool(await scalar(database_url, "SELECT count(*) FROM metrics.case_events") == len(envelopes))

        await eventually(all_consumed, timeout_s=60, every_s=0.3)
        yield c


def findings(body: dict[str, Any]) -> dict[tuple[str, str | None], list[str]]:
    return {(f["kind"], f["unit"]): f["cases"] for f in body["findings"]}


def ids(*sims: CaseSim) -> list[str]:
    return sorted(str(s.case_id) for s in sims)


async def test_the_report_lists_each_finding_with_its_cases(client: httpx.AsyncClient, cases: Cases) -> None:
    response = await client.get("/v1/accountability", params={"period": "2026-10"}, headers=COUNTY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["period"], body["signed_off"], body["not_covered"]) == ("2026-10", False, ["joint_operations"])
    assert findings(body) == {
        ("repeated_overdue", "A"): ids(cases.late1, cases.late2, cases.late3),
        ("rejection_overturned", "B"): ids(cases.bounced),
        ("whistle_unanswered", "GA"): ids(cases.whistle),
        ("supervision_ignored", "A"): ids(cases.ignored),
        ("reopened_repeatedly", "C"): ids(cases.again),
    }
    # November: nothing happened then.
    november = await client.get("/v1/accountability", params={"period": "2026-11"}, headers=COUNTY)
    assert november.json()["findings"] == []


async def test_townships_see_their_own_and_units_none(client: httpx.AsyncClient, cases: Cases) -> None:
    t2 = (await client.get("/v1/accountability", params={"period": "2026-10"}, headers=T2)).json()
    assert (t2["township"], findings(t2)) == ("T2", {("reopened_repeatedly", "C"): ids(cases.again)})
    t1 = (await client.get("/v1/accountability", params={"period": "2026-10"}, headers=T1)).json()
    assert {f["township"] for f in t1["findings"]} == {"T1"} and len(t1["findings"]) == 4
    county_on_t2 = await client.get(
        "/v1/accountability", params={"period": "2026-10", "township": "T2"}, headers=COUNTY
    )
    assert findings(county_on_t2.json()) == findings(t2)
    other = await client.get("/v1/accountability", params={"period": "2026-10", "township": "T2"}, headers=T1)
    assert other.status_code == 403
    assert (await client.get("/v1/accountability", params={"period": "2026-10"}, headers=UNIT_A)).status_code == 403
    bad = await client.get("/v1/accountability", params={"period": "2026-13"}, headers=COUNTY)
    assert bad.status_code == 422


async def test_xlsx_export(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/accountability/2026-10.xlsx", headers=COUNTY)
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    rows = [row for row in sheet.iter_rows(min_row=5, values_only=True) if row[0]]
    by_label = {(r[0], r[1]): r[3] for r in rows if r[3] is not None}
    assert by_label[("多次超期（单位）", "青溪镇综合执法队（一中队）")] == 3
    assert by_label[("退单被判无效", "青溪镇综合执法队（二中队）")] == 1
    assert any("联合执法" in str(r[0]) for r in rows)
    assert (await client.get("/v1/accountability/2026-10.csv", headers=COUNTY)).status_code == 404


async def test_sign_off_freezes_the_report(
    client: httpx.AsyncClient, module_broker: TansuBroker, database_url: str, cases: Cases
) -> None:
    before = (await client.get("/v1/accountability", params={"period": "2026-10"}, headers=COUNTY)).json()
    assert (await client.post("/v1/periods/2026-10/sign-off", headers=ADMIN)).status_code == 201
    # A late October event: another of B's rejections ruled invalid, arriving after the sign-off.
    late = dispatched("B", "T1", 27)
    late.emit("case.rejection_ruled", bj(10, 27, 15), rejected_unit="B", rejection_valid=False)
    await publish(module_broker.bootstrap, late.envelopes)

    async def arrived() -> bool:
        n = await scalar(database_url, "SELECT count(*) FROM metrics.case_events WHERE case_id = :c", c=late.case_id)
        return bool(n == len(late.envelopes))

    await eventually(arrived, timeout_s=30, every_s=0.2)
    frozen = (await client.get("/v1/accountability", params={"period": "2026-10"}, headers=COUNTY)).json()
    assert frozen["signed_off"] is True and frozen["signed_at"]
    assert findings(frozen) == findings(before)  # the late rejection does not rewrite the signed-off report
    t2 = (await client.get("/v1/accountability", params={"period": "2026-10"}, headers=T2)).json()
    assert findings(t2) == {("reopened_repeatedly", "C"): ids(cases.again)}
