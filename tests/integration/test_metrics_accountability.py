"""监督问责 end to end: case events on a real broker → metrics → PostgreSQL → ``GET /v1/accountability``.

October 2026, townships T1 (units A, B) and T2 (unit C), county department GA. Each case is built so
that exactly one finding comes out of it (worked out beside each case); the report must list those
findings and nothing else, scoped by township, exported as xlsx, and frozen by the sign-off (a late
event for October changes the live inputs, not the signed-off report). One joint operation (联合执法)
on ``operation.events`` adds a late and an absent unit (联合执法未报到).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from openpyxl import load_workbook

from services.metrics.app import create_app
from shared.embedded import TansuBroker
from shared.events import OPERATION_EVENTS, ActorRef, EventEnvelope, OperationEvent, make_envelope
from shared.messaging.topics import ensure_topics
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


class JointOperation:
    """A 联合执法 in T1 on 10-16 from 09:00, on the whistle case: A (lead) confirms 08:50 (in time), B at
    09:30 (late → B's finding, October), PCS-1 never (absent when it concludes at 12:00 → PCS-1's)."""

    def __init__(self, case: CaseSim) -> None:
        self.id = uuid.uuid4()
        self.case = str(case.case_id)
        self.envelopes: list[EventEnvelope[Any]] = []
        self.emit("operation.opened", bj(10, 15, 16))
        self.emit("operation.confirmed", bj(10, 16, 8, 50), unit="A", late=False)
        self.emit("operation.confirmed", bj(10, 16, 9, 30), unit="B", late=True, confirmed_late=["B"])
        self.emit("operation.concluded", bj(10, 16, 12), state="concluded", confirmed_late=["B"], absent=["PCS-1"])

    def emit(self, event_type: str, at: datetime, **fields: Any) -> None:
        data = OperationEvent(
            operation_id=self.id, version=len(self.envelopes) + 1, occurred_at=at,
            actor=ActorRef(role="dispatcher", township="T1"), state=fields.pop("state", "open"), township="T1",
            lead_unit="A", units=["A", "B", "PCS-1"], starts_at=bj(10, 16, 9), ends_at=bj(10, 16, 11),
            cases=[uuid.UUID(self.case)], **fields,
        )  # fmt: skip
        envelope = make_envelope(
            event_type=event_type,
            data=data,
            source="/dispatch/forces",
            correlation_id="t",
            subject=str(self.id),
            time=at,
        )
        self.envelopes.append(envelope)


async def publish_operations(bootstrap: str, envelopes: list[EventEnvelope[Any]]) -> None:
    """Publish to ``operation.events``, keyed by operation like dispatch's outbox."""
    await ensure_topics(bootstrap, [OPERATION_EVENTS])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait(
                OPERATION_EVENTS, value=env.to_bytes(), key=(env.subject or "").encode(), headers=env.headers()
            )
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def cases() -> Cases:
    return Cases()


@pytest.fixture(scope="module")
def operation(cases: Cases) -> JointOperation:
    return JointOperation(cases.whistle)


@pytest.fixture(scope="module")
async def client(
    database_url: str, module_broker: TansuBroker, cases: Cases, operation: JointOperation
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(database_url, module_broker.bootstrap), grid_transport=fake_grid(GRID_UNITS))
    async with serve(app) as c:
        envelopes = [env for sim in cases.all() for env in sim.envelopes]
        await publish(module_broker.bootstrap, envelopes)
        await publish_operations(module_broker.bootstrap, operation.envelopes)

        async def all_consumed() -> bool:
            n = await scalar(database_url, "SELECT count(*) FROM metrics.case_events")
            ops = await scalar(database_url, "SELECT count(*) FROM metrics.operation_events")
            return bool(n == len(envelopes) and ops == len(operation.envelopes))

        await eventually(all_consumed, timeout_s=60, every_s=0.3)
        yield c


def findings(body: dict[str, Any]) -> dict[tuple[str, str | None], list[str]]:
    return {(f["kind"], f["unit"]): f["cases"] for f in body["findings"]}


def ids(*sims: CaseSim) -> list[str]:
    return sorted(str(s.case_id) for s in sims)


async def test_the_report_lists_each_finding_with_its_cases(
    client: httpx.AsyncClient, cases: Cases, operation: JointOperation
) -> None:
    response = await client.get("/v1/accountability", params={"period": "2026-10"}, headers=COUNTY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["period"], body["signed_off"], body["not_covered"]) == ("2026-10", False, [])
    assert findings(body) == {
        ("repeated_overdue", "A"): ids(cases.late1, cases.late2, cases.late3),
        ("rejection_overturned", "B"): ids(cases.bounced),
        ("whistle_unanswered", "GA"): ids(cases.whistle),
        ("supervision_ignored", "A"): ids(cases.ignored),
        ("reopened_repeatedly", "C"): ids(cases.again),
        ("operation_absent", "PCS-1"): ids(cases.whistle),
        ("operation_late", "B"): ids(cases.whistle),
    }
    joint = {f["unit"]: f for f in body["findings"] if f["kind"].startswith("operation_")}
    assert joint["B"]["operations"] == [{
        "operation_id": str(operation.id), "at": bj(10, 16, 9, 30).isoformat(), "lead_unit": "A",
        "starts_at": bj(10, 16, 9).isoformat(), "ends_at": bj(10, 16, 11).isoformat(), "cases": ids(cases.whistle),
    }]  # fmt: skip
    assert (joint["PCS-1"]["operations"][0]["at"], joint["PCS-1"]["count"]) == (bj(10, 16, 12).isoformat(), 1)
    # November: nothing happened then.
    november = await client.get("/v1/accountability", params={"period": "2026-11"}, headers=COUNTY)
    assert november.json()["findings"] == []


async def test_townships_see_their_own_and_units_none(client: httpx.AsyncClient, cases: Cases) -> None:
    t2 = (await client.get("/v1/accountability", params={"period": "2026-10"}, headers=T2)).json()
    assert (t2["township"], findings(t2)) == ("T2", {("reopened_repeatedly", "C"): ids(cases.again)})
    t1 = (await client.get("/v1/accountability", params={"period": "2026-10"}, headers=T1)).json()
    assert {f["township"] for f in t1["findings"]} == {"T1"} and len(t1["findings"]) == 6  # 4 + the operation's 2
    county_on_t2 = await client.get(
        "/v1/accountability", params={"period": "2026-10", "township": "T2"}, headers=COUNTY
    )
    assert findings(county_on_t2.json()) == findings(t2)
    other = await client.get("/v1/accountability", params={"period": "2026-10", "township": "T2"}, headers=T1)
    assert other.status_code == 403
    assert (await client.get("/v1/accountability", params={"period": "2026-10"}, headers=UNIT_A)).status_code == 403
    bad = await client.get("/v1/accountability", params={"period": "2026-13"}, headers=COUNTY)
    assert bad.status_code == 422


async def test_xlsx_export(client: httpx.AsyncClient, operation: JointOperation) -> None:
    response = await client.get("/v1/accountability/2026-10.xlsx", headers=COUNTY)
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    rows = [row for row in sheet.iter_rows(min_row=5, values_only=True) if row[0]]
    by_label = {(r[0], r[1]): r[3] for r in rows if r[3] is not None}
    assert by_label[("多次超期（单位）", "青溪镇综合执法队（一中队）")] == 3
    assert by_label[("退单被判无效", "青溪镇综合执法队（二中队）")] == 1
    assert by_label[("联合执法迟到报到", "青溪镇综合执法队（二中队）")] == 1
    absent = next(r for r in rows if r[0] == "联合执法未报到（缺席）")
    assert (absent[1], absent[3], absent[5]) == ("青溪派出所", 1, str(operation.id))
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
    joint = [f for f in frozen["findings"] if f["kind"].startswith("operation_")]
    assert joint == [f for f in before["findings"] if f["kind"].startswith("operation_")] and len(joint) == 2
    t2 = (await client.get("/v1/accountability", params={"period": "2026-10"}, headers=T2)).json()
    assert findings(t2) == {("reopened_repeatedly", "C"): ids(cases.again)}
