"""Metrics end to end: case events on a real Tansu broker → the service → PostgreSQL → HTTP.

The hand-computed fixture of ``tests/unit/test_metrics_rules.py`` (20 cases across 3 units,
arithmetic written out there) is published as dispatch publishes it — ``shared.events.CaseEvent``
envelopes on ``case.events`` — shifted 30 days into October 2026, so period ``2026-10`` has
ended and is evaluated as of its end, exactly like the pure test's ``AS_OF``. The service
consumes them into PostgreSQL; ``GET /v1/indicators`` and ``GET /v1/scores`` must give the
same exact figures. Also: a township-led 派驻机构 fixture with ratings, working-time
durations across the 2026 National Day make-up Saturday, out-of-order and duplicated events,
a replay from offset 0, scopes, schemes, exports, Prometheus, the DLQ, and sign-off with a
late event (revision beside an unchanged published score).

Tests in this module share one broker, one database and one app, and run in file order
(the sign-off test, which changes the data, is last).
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Header, HTTPException
from openpyxl import load_workbook
from sqlalchemy import text

from services.metrics.app import create_app
from services.metrics.periods import TZ
from services.metrics.settings import MetricsSettings
from shared.db import create_engine
from shared.embedded import TansuBroker
from shared.events import (
    CASE_EVENTS,
    JURISDICTION_CHANGED,
    ActorRef,
    CaseEvent,
    EventEnvelope,
    JurisdictionChanged,
    dlq_topic,
    make_envelope,
)
from shared.messaging.topics import ensure_topics
from tests.conftest import ARTIFACTS, read_topic
from tests.helpers import eventually, serve
from tests.unit.test_metrics_rules import FIXTURE, outcome, rich_case

# --------------------------------------------------------------------------- publishing like dispatch

#: State after each event type (as the dispatch state machine leaves it).
STATE_AFTER: dict[str, str] = {
    "case.dispatched": "dispatched",
    "case.assigned": "dispatched",
    "case.reassigned": "dispatched",
    "case.accepted": "accepted",
    "case.rejected": "rejected",
    "case.resolved": "resolved",
    "case.closed": "closed",
    "case.self_handled": "closed",
}


class CaseSim:
    """One case's events as dispatch publishes them: every event carries where the case stands.

    模拟派遣服务：每条事件都携带流转后的乡镇、主办单位及其类型、事项、来源、期限等。
    """

    def __init__(self, case_id: uuid.UUID | None = None, *, kinds: Mapping[str, str | None] | None = None) -> None:
        self.case_id = case_id or uuid.uuid4()
        self.kinds = dict(kinds or {})
        self.version = 1  # version 1 is 立案 inside dispatch
        self.state = "reported"
        self.cur: dict[str, Any] = {
            "township": None,
            "unit": None,
            "unit_kind": None,
            "matter": None,
            "matter_group": None,
            "source": None,
            "urgency": None,
            "reported_at": None,
            "deadline": None,
            "time_basis": None,
            "accept_deadline": None,
            "cohandlers": [],
        }
        self.envelopes: list[EventEnvelope[Any]] = []

    def emit(self, event_type: str, at: datetime, *, state: str | None = None, **fields: Any) -> CaseSim:
        for key in list(fields):
            if key in self.cur:
                self.cur[key] = fields.pop(key)
        self.cur["unit_kind"] = self.kinds.get(self.cur["unit"]) if self.cur["unit"] is not None else None
        self.version += 1
        previous, self.state = self.state, state or STATE_AFTER.get(event_type, self.state)
        payload = CaseEvent(
            case_id=self.case_id,
            version=self.version,
            occurred_at=at,
            actor=ActorRef(role="dispatcher", township="*"),
            state=self.state,
            previous_state=previous,
            **self.cur,
            **fields,
        )
        self.envelopes.append(
            make_envelope(
                event_type=event_type,
                data=payload,
                source="/dispatch",
                correlation_id=str(self.case_id),
                subject=str(self.case_id),
                time=at,
            )
        )
        return self


def _shifted(value: Any, shift: timedelta) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment + shift


def from_pure(events: Iterable[Mapping[str, Any]], *, shift: timedelta, kinds: Mapping[str, str | None]) -> CaseSim:
    """A case of the pure-test builder (``{type, occurred_at, version, data}``) as CaseEvents."""
    sim = CaseSim(kinds=kinds)
    for e in sorted(events, key=lambda e: e["version"]):
        t, data, at = e["type"], dict(e["data"]), _shifted(e["occurred_at"], shift)
        fields: dict[str, Any] = {
            k: data[k] for k in ("matter", "matter_group", "source", "urgency", "time_basis", "township") if k in data
        }
        fields.update(
            {k: _shifted(data[k], shift) for k in ("deadline", "accept_deadline", "reported_at") if k in data}
        )
        state = None
        if t in ("case.dispatched", "case.assigned", "case.reassigned"):
            fields["unit"] = data["unit"]
        elif t == "case.rejected":  # dispatch clears the primary unit on 退单
            fields.update(unit=None, rejected_unit=data["rejected_unit"], reason=data.get("reason"))
        elif t == "case.rejection_ruled":
            fields.update(rejected_unit=data["rejected_unit"], rejection_valid=data["valid"])
        elif t == "case.extension_requested":
            fields["details"] = {"requested_deadline": _shifted(data["requested_deadline"], shift).isoformat()}
        elif t == "case.extended":
            fields["extension_approved"] = True
        elif t == "case.verified":
            fields["verification_passed"] = data["passed"]
            state = "closed" if data["passed"] else "reopened"
        elif t == "case.callback_recorded":
            fields.update(satisfaction=data["satisfaction"], solved=data.get("solved"))
        elif t == "case.reopened":
            fields["reason"] = data.get("reason")
            state = "reopened"
        elif t == "case.overdue":
            fields["overdue"] = True
        elif t == "case.cohandler_added":
            fields["cohandlers"] = [*sim.cur["cohandlers"], data["cohandler"]]
        sim.emit(t, at, state=state, **fields)
    return sim


async def publish(bootstrap: str, envelopes: Iterable[EventEnvelope[Any]], *, keyed: bool = True) -> None:
    """Publish to ``case.events``: keyed by case like the outbox, or spread over partitions."""
    await ensure_topics(bootstrap, [CASE_EVENTS])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i, env in enumerate(envelopes):
            await producer.send_and_wait(
                CASE_EVENTS,
                value=env.to_bytes(),
                key=env.subject.encode() if keyed and env.subject else None,
                headers=env.headers(),
                partition=None if keyed else i % 6,
            )
    finally:
        await producer.stop()


def fake_grid(units: list[dict[str, Any]], token: str = "grid-token") -> httpx.ASGITransport:
    """A tiny stand-in for the grid service's ``GET /v1/units`` (checks the bearer token)."""
    grid = FastAPI()

    @grid.get("/v1/units")
    async def list_units(authorization: str | None = Header(None)) -> dict[str, Any]:
        if authorization != f"Bearer {token}":
            raise HTTPException(401, "bad token")
        return {"units": units}

    return httpx.ASGITransport(app=grid)


# --------------------------------------------------------------------------- the module's data

SHIFT_OCT = timedelta(days=-30)  # November 2..28 → October 3..29; as_of 12-01 → 11-01 (end of 2026-10)
SHIFT_SEP = timedelta(days=-61)
KINDS: dict[str, str | None] = {"A": "enforcement_team", "B": "enforcement_team", "C": "enforcement_team"}
GRID_UNITS: list[dict[str, Any]] = [
    {"id": "A", "name": "青溪镇综合执法队（一中队）", "kind": "enforcement_team", "township_code": "T1"},
    {"id": "B", "name": "青溪镇综合执法队（二中队）", "kind": "enforcement_team", "township_code": "T1"},
    {"id": "C", "name": "枫林镇综合执法队", "kind": "enforcement_team", "township_code": "T2"},
    {"id": "W", "name": "白沙街道城管办", "kind": "township_office", "township_code": "T3"},
    # the agency's kind comes from grid only: its events carry no unit_kind
    {"id": "PCS-1", "name": "青溪派出所", "kind": "stationed_agency", "department": "GA", "covers": ["T1", "T2"]},
]
STAFF = orjson.dumps(
    {
        "t-admin": {"role": "admin", "township": "*"},
        "t-county": {"role": "dispatcher", "township": "*"},
        "t-t1": {"role": "township_admin", "township": "T1"},
        "t-t2": {"role": "township_admin", "township": "T2"},
        "t-unit-a": {"role": "unit", "township": "T1", "unit": "A"},
    }
).decode()
ADMIN = {"Authorization": "Bearer t-admin"}


def bj(month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


def police_case(township: str, day: int, *, late: bool, satisfaction: str, solved: bool) -> CaseSim:
    """A 12345 case of the stationed agency PCS-1 in October. 派驻机构案件。"""
    d = bj(10, day)
    sim = CaseSim(kinds={})
    sim.emit(
        "case.dispatched",
        d,
        township=township,
        unit="PCS-1",
        source="12345",
        matter="噪声扰民",
        matter_group="社会治安",
        urgency="normal",
        time_basis="natural",
        reported_at=d - timedelta(hours=1),
        deadline=d + timedelta(days=3),
        accept_deadline=d + timedelta(days=1),
    )
    sim.emit("case.accepted", d + timedelta(hours=1))
    resolved = d + timedelta(days=5 if late else 1)
    sim.emit("case.resolved", resolved)
    sim.emit("case.verified", resolved + timedelta(hours=2), state="closed", verification_passed=True)
    sim.emit("case.closed", resolved + timedelta(hours=3))
    sim.emit("case.callback_recorded", resolved + timedelta(days=1), satisfaction=satisfaction, solved=solved)
    return sim


def working_time_case() -> CaseSim:
    """Dispatched Fri 2026-10-09 16:00, resolved Mon 10-12 10:00 across the make-up Saturday 10-10 (调休上班)."""
    sim = CaseSim(kinds={"W": "township_office"})
    sim.emit(
        "case.dispatched",
        bj(10, 9, 16),
        township="T3",
        unit="W",
        source="cityops",
        matter="暴露垃圾",
        matter_group="市容环境",
        urgency="normal",
        time_basis="working",
        reported_at=bj(10, 9, 15),
        deadline=bj(10, 12, 16),
        accept_deadline=bj(10, 12, 8, 30),
    )
    sim.emit("case.accepted", bj(10, 9, 16, 30))
    sim.emit("case.resolved", bj(10, 12, 10))
    sim.emit("case.verified", bj(10, 12, 10, 30), state="closed", verification_passed=True)
    sim.emit("case.closed", bj(10, 12, 11))
    return sim


class Data:
    """Everything the module publishes, and the ids tests look up. 本模块发布的数据。"""

    def __init__(self) -> None:
        self.fixture = {spec[0]: from_pure(outcome(*spec).events, shift=SHIFT_OCT, kinds=KINDS) for spec in FIXTURE}
        self.police = [
            police_case("T1", 5, late=False, satisfaction="satisfied", solved=True),
            police_case("T1", 6, late=False, satisfaction="satisfied", solved=True),
            police_case("T1", 7, late=False, satisfaction="satisfied", solved=True),
            police_case("T1", 8, late=False, satisfaction="basically_satisfied", solved=True),
            police_case("T1", 9, late=True, satisfaction="unsatisfied", solved=False),
            *[police_case("T2", day, late=False, satisfaction="satisfied", solved=True) for day in range(12, 17)],
        ]
        self.working = working_time_case()
        # The same rich case twice: X in order, Y shuffled and with duplicates (same event ids).
        self.ordered = from_pure(rich_case().events, shift=SHIFT_SEP, kinds={"U2": "township_office"})
        self.shuffled = from_pure(rich_case().events, shift=SHIFT_SEP, kinds={"U2": "township_office"})

    def in_order(self) -> list[EventEnvelope[Any]]:
        sims = [*self.fixture.values(), *self.police, self.working, self.ordered]
        return [env for sim in sims for env in sim.envelopes]

    def noisy(self) -> list[EventEnvelope[Any]]:
        rng = random.Random(20261124)
        events = list(self.shuffled.envelopes)
        noisy = events + rng.sample(events, k=len(events) // 2)
        rng.shuffle(noisy)
        return noisy

    @property
    def unique_events(self) -> int:
        return len(self.in_order()) + len(self.shuffled.envelopes)


def settings_for(database_url: str, bootstrap: str, **kw: Any) -> MetricsSettings:
    return MetricsSettings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        staff_tokens=STAFF,
        grid_url="http://grid.test",
        grid_token="grid-token",
        revision_interval_s=0.2,
        log_json=False,
        **kw,
    )


async def scalar(database_url: str, sql: str, **params: Any) -> Any:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()
    finally:
        await engine.dispose()


async def fact_rows(database_url: str) -> dict[str, dict[str, Any]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM metrics.case_facts"))).mappings().all()
    finally:
        await engine.dispose()
    return {str(r["case_id"]): {k: v for k, v in r.items() if k != "updated_at"} for r in rows}


@pytest.fixture(scope="module")
def broker() -> Iterator[TansuBroker]:
    """This module's own broker: no other test's case events reach its consumer group."""
    ARTIFACTS.mkdir(exist_ok=True)
    own = TansuBroker(log_path=ARTIFACTS / "tansu-metrics.log")
    own.start()
    try:
        yield own
    finally:
        own.stop()


@pytest.fixture(scope="module")
def data() -> Data:
    return Data()


@pytest.fixture(scope="module")
async def client(database_url: str, broker: TansuBroker, data: Data) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(database_url, broker.bootstrap), grid_transport=fake_grid(GRID_UNITS))
    async with serve(app) as c:
        await publish(broker.bootstrap, data.in_order())
        await publish(broker.bootstrap, data.noisy(), keyed=False)

        async def all_consumed() -> bool:
            n = await scalar(database_url, "SELECT count(*) FROM metrics.case_events")
            return bool(n == data.unique_events)

        await eventually(all_consumed, timeout_s=60, every_s=0.3)
        yield c


async def indicators(client: httpx.AsyncClient, token: str = "t-admin", **params: Any) -> httpx.Response:
    return await client.get("/v1/indicators", params=params, headers={"Authorization": f"Bearer {token}"})


# --------------------------------------------------------------------------- the hand-computed fixture


async def test_hand_computed_indicators_end_to_end(client: httpx.AsyncClient) -> None:
    response = await indicators(client, period="2026-10", group_by="unit,township")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["as_of"] == "2026-11-01T00:00:00+08:00"  # a closed period is evaluated as of its end
    rows = {(r["unit"], r["township"]): r for r in body["rows"]}
    a, b, c = rows[("A", "T1")], rows[("B", "T1")], rows[("C", "T2")]
    # Same figures as tests/unit/test_metrics_rules.py::test_hand_computed_counts / _indicators.
    assert (a["counts"]["dispatched"], a["counts"]["resolved"], a["counts"]["resolved_on_time"]) == (8, 7, 6)
    assert (a["counts"]["overdue"], a["counts"]["reworked"], a["counts"]["extended"]) == (2, 1, 1)
    assert (a["counts"]["accepted"], a["counts"]["rejected"]) == (8, 0)
    assert (b["counts"]["dispatched"], b["counts"]["resolved"], b["counts"]["resolved_on_time"]) == (7, 7, 6)
    assert (b["counts"]["overdue"], b["counts"]["reworked"], b["counts"]["extended"]) == (1, 0, 1)
    assert (c["counts"]["dispatched"], c["counts"]["resolved"], c["counts"]["resolved_on_time"]) == (5, 3, 3)
    assert (c["counts"]["overdue"], c["counts"]["reworked"], c["counts"]["rejected"], c["counts"]["closed"]) == (
        1,
        1,
        0,
        3,
    )
    assert a["rates"]["resolution_rate"] == 0.875
    assert a["rates"]["ontime_resolution_rate"] == 0.75
    assert a["rates"]["rework_rate"] == pytest.approx(1 / 7)
    assert (a["rates"]["overdue_rate"], a["rates"]["extension_rate"], a["rates"]["acceptance_rate"]) == (
        0.25,
        0.125,
        1.0,
    )
    assert a["rates"]["satisfaction_rate"] is None  # no 回访 → None, never 0
    # 准确派遣率 is a dispatcher's figure (GET /v1/dispatchers), not a unit's: no hand dispatches here
    assert (a["rates"]["accurate_dispatch_rate"], b["rates"]["accurate_dispatch_rate"]) == (None, None)
    assert (c["rates"]["resolution_rate"], c["rates"]["ontime_resolution_rate"], c["rates"]["overdue_rate"]) == (
        0.6,
        0.6,
        0.2,
    )
    assert c["rates"]["rework_rate"] == pytest.approx(1 / 3)
    assert a["unit_name"] == "青溪镇综合执法队（一中队）"  # from grid
    # A's 处置时长 (first dispatch → accepted resolution): a1–a4 1 day, a5 2 days (after the rework),
    # a6 and a7 5 days → natural mean (4 × 24 + 48 + 2 × 120) / 7 = 384 / 7 h, median 24 h
    natural = a["durations"]["handling_natural_h"]
    assert natural["avg"] == pytest.approx(384 / 7, abs=1e-3) and natural["median"] == 24.0


async def test_hand_computed_scores_end_to_end(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/scores/cityops_professional/2026-10", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scheme"] == {
        "id": "cityops_professional",
        "version": 1,
        "name": "数字城管专业部门考核",
        "kind": "standard",
    }
    assert body["signed_off"] is None
    rows = {r["unit"]: r for r in body["rows"]}
    a, b, c = rows["A"], rows["B"], rows["C"]
    # A 82.14 (B), B 92.86 (A), C 69.33 (C): arithmetic in test_metrics_rules.py::test_hand_computed_scores
    assert (a["score"], a["grade"], a["status"], a["cases"]) == (82.14, "B", "scored", 8)
    assert a["parts"]["resolution_rate"] == pytest.approx(26.25)
    assert a["parts"]["rework_rate"] == pytest.approx(120 / 7)
    assert (b["score"], b["grade"]) == (92.86, "A")
    assert (c["score"], c["grade"]) == (69.33, "C")
    assert [(r["unit"], r["rank_in_kind"]) for r in (b, a, c)] == [("B", 1), ("A", 2), ("C", 3)]
    assert (b["rank_in_township"], a["rank_in_township"], c["rank_in_township"]) == (1, 2, 1)
    assert a["cases_url"] == "/v1/scores/cityops_professional/2026-10/A/cases"
    # W (township office) has 1 case: "insufficient data", not ranked
    assert (rows["W"]["status"], rows["W"]["status_label"], rows["W"]["rank_in_kind"]) == (
        "insufficient_data",
        "数据不足",
        None,
    )


async def test_each_row_links_to_its_cases(client: httpx.AsyncClient) -> None:
    scores = (await client.get("/v1/scores/cityops_professional/2026-10", headers=ADMIN)).json()
    row = next(r for r in scores["rows"] if r["unit"] == "A")
    cases = await client.get(row["cases_url"], headers=ADMIN)
    assert cases.status_code == 200, cases.text
    body = cases.json()
    assert body["total"] == 8 == len(body["cases"])
    totals = {k: sum(c["counts"][k] for c in body["cases"]) for k in body["cases"][0]["counts"]}
    counts = (await indicators(client, period="2026-10", unit="A")).json()["rows"][0]["counts"]
    assert totals == counts  # the cases explain the row exactly 逐案贡献之和即单位计数


async def test_township_led_scheme_with_ratings(client: httpx.AsyncClient) -> None:
    # the township's rating: its own township admin or admin; 0..100
    url = "/v1/ratings/2026-10/T1/PCS-1"
    assert (await client.put(url, json={"rating": 80}, headers={"Authorization": "Bearer t-t2"})).status_code == 403
    assert (await client.put(url, json={"rating": 120}, headers=ADMIN)).status_code == 422
    assert (await client.put("/v1/ratings/2026-10/T1/A", json={"rating": 80}, headers=ADMIN)).status_code == 422
    put = await client.put(url, json={"rating": 80, "note": "配合较好"}, headers={"Authorization": "Bearer t-t1"})
    assert put.status_code == 200, put.text
    body = (await client.get("/v1/scores/stationed_agency_township_led/2026-10", headers=ADMIN)).json()
    rows = {(r["unit"], r["township"]): r for r in body["rows"]}
    assert set(rows) == {("PCS-1", "T1"), ("PCS-1", "T2")}  # scored separately per township served
    t1 = rows[("PCS-1", "T1")]
    # 乡镇评价 80 × 50% = 40; 按期办结率 4/5 × 20 = 16; 响应率 5/5 × 10 = 10;
    # 满意率 (3 + 0.9 × 1)/5 = 0.78 × 10 = 7.8; 1 − 超期率 (1 − 1/5) × 10 = 8 → 81.8 B
    assert (t1["score"], t1["grade"], t1["township_rating"], t1["unit_name"]) == (81.8, "B", 80.0, "青溪派出所")
    assert t1["cases_url"] == "/v1/scores/stationed_agency_township_led/2026-10/PCS-1/cases?township=T1"
    t2 = rows[("PCS-1", "T2")]
    # T2 gave no rating: never read as 0 → incomplete; partial 20 + 10 + 10 + 10 = 50
    assert (t2["status"], t2["rating_missing"], t2["partial_score"], t2["score"]) == ("incomplete", True, 50.0, None)
    # The standard 接诉即办 scheme gives the agency no second, non-township-led ranking (以乡镇为主)
    hotline = (await client.get("/v1/scores/hotline_three_rates/2026-10", headers=ADMIN)).json()
    assert [r for r in hotline["rows"] if r["unit"] == "PCS-1"] == []
    ratings = (await client.get("/v1/ratings/2026-10", headers={"Authorization": "Bearer t-t1"})).json()["ratings"]
    assert [(r["township"], r["unit"], r["rating"], r["note"]) for r in ratings] == [("T1", "PCS-1", 80.0, "配合较好")]


async def test_working_and_natural_durations(client: httpx.AsyncClient, data: Data) -> None:
    response = await client.get(f"/v1/cases/{data.working.case_id}/durations", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    # 处置时长 Fri 10-09 16:00 → Mon 10-12 10:00: natural 66 h; working 1.5 (Fri 16:00–17:30)
    # + 7.5 (Sat 10-10, 调休上班 make-up day) + 0 (Sun) + 1.5 (Mon 08:30–10:00) = 10.5 h
    assert body["handling"]["natural_hours"] == pytest.approx(66.0)
    assert body["handling"]["working_hours"] == pytest.approx(10.5)
    # 结案时长 reported Fri 15:00 → closed Mon 11:00: natural 68 h; working 2.5 + 7.5 + 2.5 = 12.5 h
    assert body["closing"]["natural_hours"] == pytest.approx(68.0)
    assert body["closing"]["working_hours"] == pytest.approx(12.5)
    assert body["durations_provisional"] is False and body["time_basis"] == "working"
    assert (await client.get(f"/v1/cases/{uuid.uuid4()}/durations", headers=ADMIN)).status_code == 404
    # the stored working figures equal what the SQL recompute gives: nothing changes
    recompute = await client.post("/v1/admin/recompute-durations", headers=ADMIN)
    assert recompute.status_code == 200 and recompute.json()["changed"] == 0
    assert (
        await client.post("/v1/admin/recompute-durations", headers={"Authorization": "Bearer t-t1"})
    ).status_code == 403


async def test_out_of_order_and_duplicated_events_give_identical_facts(
    client: httpx.AsyncClient, database_url: str, data: Data
) -> None:
    rows = await fact_rows(database_url)
    ordered, shuffled = rows[str(data.ordered.case_id)], rows[str(data.shuffled.case_id)]
    ordered.pop("case_id")
    shuffled.pop("case_id")
    assert ordered == shuffled
    assert (ordered["unit"], ordered["reworks"], ordered["extensions"], ordered["cohandlers"]) == ("U2", 1, 1, ["U3"])
    assert ordered["event_count"] == len(data.ordered.envelopes)


async def test_replay_from_offset_zero_gives_identical_rows(
    client: httpx.AsyncClient, database_url: str, own_database_url: str, broker: TansuBroker, data: Data
) -> None:
    replay = create_app(
        settings_for(own_database_url, broker.bootstrap, consumer_group="metrics-replay"),
        grid_transport=fake_grid(GRID_UNITS),
    )
    async with serve(replay):

        async def caught_up() -> bool:
            return bool(
                await scalar(own_database_url, "SELECT count(*) FROM metrics.case_events") == data.unique_events
            )

        await eventually(caught_up, timeout_s=60, every_s=0.3)
    assert await fact_rows(own_database_url) == await fact_rows(database_url)


async def test_scopes(client: httpx.AsyncClient, data: Data) -> None:
    t1 = (await indicators(client, "t-t1", period="2026-10", group_by="unit,township")).json()
    assert {r["township"] for r in t1["rows"]} == {"T1"} and {"A", "B", "PCS-1"} == {r["unit"] for r in t1["rows"]}
    assert (await indicators(client, "t-t1", period="2026-10", township="T2")).status_code == 403
    unit_a = (await indicators(client, "t-unit-a", period="2026-10")).json()
    assert [r["unit"] for r in unit_a["rows"]] == ["A"]
    assert (await indicators(client, "t-unit-a", period="2026-10", unit="B")).status_code == 403
    scores = (
        await client.get("/v1/scores/cityops_professional/2026-10", headers={"Authorization": "Bearer t-t1"})
    ).json()
    assert {r["unit"] for r in scores["rows"]} == {"A", "B"}
    c5 = data.fixture["c5"].case_id
    assert (await client.get(f"/v1/cases/{c5}/durations", headers={"Authorization": "Bearer t-t1"})).status_code == 404
    assert (await client.get(f"/v1/cases/{c5}/durations", headers={"Authorization": "Bearer t-t2"})).status_code == 200
    assert (await client.get("/v1/indicators", params={"period": "2026-10"})).status_code == 401


async def test_indicator_grouping_and_validation(client: httpx.AsyncClient) -> None:
    by_kind = (await indicators(client, period="2026-10", group_by="kind")).json()
    kinds = {r["kind"]: r["counts"]["dispatched"] for r in by_kind["rows"]}
    # 20 fixture cases are enforcement teams; PCS-1's kind comes from grid (its events carry none)
    assert kinds == {"enforcement_team": 20, "stationed_agency": 10, "township_office": 1}
    assert by_kind["total"]["counts"]["dispatched"] == 31
    by_source = (await indicators(client, period="2026-10", group_by="source", kind="stationed_agency")).json()
    assert [(r["source"], r["counts"]["callbacks_valid"]) for r in by_source["rows"]] == [("12345", 10)]
    span = (await indicators(client, **{"from": "2026-10-01", "to": "2026-10-31"}, group_by="")).json()
    assert span["rows"] == [] and span["total"]["counts"]["dispatched"] == 31
    assert span["period"]["id"] == "2026-10-01..2026-10-31"
    week = (await indicators(client, period="2026-W41", group_by="")).json()  # Mon 10-05 .. Sun 10-11
    assert week["period"]["start"] == "2026-10-05T00:00:00+08:00"
    for bad, message in (
        ({"period": "2026-13"}, "invalid period"),
        ({"period": "2026-10", "group_by": "colour"}, "group_by"),
        ({}, "period"),
        ({"period": "2026-10", "from": "2026-10-01", "to": "2026-10-02"}, "either"),
    ):
        response = await indicators(client, **bad)
        assert response.status_code == 422 and message in response.text, (bad, response.text)


async def test_schemes_list_put_and_validation(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/v1/schemes", headers={"Authorization": "Bearer t-t1"})).json()["schemes"]
    assert {s["id"] for s in listed} >= {"cityops_professional", "hotline_three_rates", "stationed_agency_township_led"}
    assert all(s["total_weight"] == 100 for s in listed)
    body: dict[str, Any] = {
        "name": "县级部门报到考核",
        "unit_kinds": ["county_department"],
        "indicators": [
            {"indicator": "timely_acceptance_rate", "weight": 40},
            {"indicator": "solved_rate", "weight": 30},
            {"indicator": "ontime_resolution_rate", "weight": 20},
        ],
    }
    url = "/v1/schemes/county_report_in"
    bad = await client.put(url, json=body, headers=ADMIN)
    assert bad.status_code == 422
    [error] = bad.json()["detail"]
    assert error["loc"] == ["body", "indicators"] and "90" in error["msg"] and "100" in error["msg"]
    body["indicators"][2]["weight"] = 30
    assert (await client.put(url, json=body, headers={"Authorization": "Bearer t-t1"})).status_code == 403
    first = await client.put(url, json=body, headers=ADMIN)
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    second = await client.put(url, json={**body, "min_cases": 3}, headers=ADMIN)
    assert second.json()["version"] == 2
    stale = await client.put(url, json={**body, "version": 2}, headers=ADMIN)
    assert stale.status_code == 409 and "above" in stale.text
    detail = (await client.get(url, headers=ADMIN)).json()
    assert detail["version"] == 2 and detail["min_cases"] == 3
    assert [(v["version"], v["active"], v["origin"]) for v in detail["versions"]] == [
        (1, False, "api"),
        (2, True, "api"),
    ]
    assert (await client.get(url, params={"version": 1}, headers=ADMIN)).json()["min_cases"] == 5
    missing = await client.get("/v1/scores/no_such_scheme/2026-10", headers=ADMIN)
    assert missing.status_code == 404 and "cityops_professional" in missing.text


async def test_exports_csv_and_xlsx(client: httpx.AsyncClient) -> None:
    csv_response = await client.get("/v1/export/cityops_professional/2026-10.csv", headers=ADMIN)
    assert csv_response.status_code == 200 and csv_response.headers["content-type"].startswith("text/csv")
    assert csv_response.content.startswith("\ufeff".encode())  # BOM: Excel opens the Chinese correctly
    assert "filename*=UTF-8''" in csv_response.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(csv_response.content.decode("utf-8-sig"))))
    header = table[0]
    assert header[:8] == ["乡镇", "单位编码", "单位名称", "单位类型", "派遣案件数", "状态", "得分", "等级"]
    assert "办结率（处置率）（%）" in header and "1 − 超期率（得分）" in header
    a = next(row for row in table[1:] if row[1] == "A")
    assert (a[0], a[2], a[3], a[4], a[6], a[7]) == ("T1", "青溪镇综合执法队（一中队）", "综合执法队", "8", "82.14", "B")
    assert a[header.index("办结率（处置率）（%）")] == "87.50"

    xlsx = await client.get("/v1/export/cityops_professional/2026-10.xlsx", headers=ADMIN)
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    wb = load_workbook(io.BytesIO(xlsx.content))
    assert wb.sheetnames == ["考核结果", "方案说明"]
    ws = wb["考核结果"]
    assert "数字城管专业部门考核" in ws["A1"].value and "2026-10" in ws["A1"].value
    headers = [c.value for c in ws[4]]
    assert headers[:8] == ["乡镇", "单位编码", "单位名称", "单位类型", "派遣案件数", "状态", "得分", "等级"]
    rows = {r[1]: r for r in ws.iter_rows(min_row=5, values_only=True)}
    assert (rows["A"][6], rows["A"][7], rows["B"][6], rows["C"][6]) == (82.14, "B", 92.86, 69.33)
    assert rows["A"][headers.index("办结率（处置率）")] == 0.875
    assert ws.cell(row=5, column=headers.index("办结率（处置率）") + 1).number_format == "0.00%"
    assert (await client.get("/v1/export/cityops_professional/2026-10.pdf", headers=ADMIN)).status_code == 404
    t1 = await client.get("/v1/export/cityops_professional/2026-10.csv", headers={"Authorization": "Bearer t-t1"})
    assert {row[1] for row in list(csv.reader(io.StringIO(t1.content.decode("utf-8-sig"))))[1:]} == {"A", "B"}


async def test_prometheus_gauges_histograms_and_consumer_figures(client: httpx.AsyncClient) -> None:
    text_ = (await client.get("/metrics")).text
    # open now (2026-11): a8 in T1; c4, c5 in T2 — all three past their deadline
    assert 'metrics_open_cases{township="T1",unit_kind="enforcement_team"} 1.0' in text_
    assert 'metrics_overdue_cases{township="T1",unit_kind="enforcement_team"} 1.0' in text_
    assert 'metrics_open_cases{township="T2",unit_kind="enforcement_team"} 2.0' in text_
    assert 'metrics_overdue_cases{township="T2",unit_kind="enforcement_team"} 2.0' in text_
    assert 'metrics_handling_working_hours_bucket{le="0.5",source="cityops"}' in text_
    assert 'metrics_handling_natural_hours_count{source="12345"} 10.0' in text_
    assert 'metrics_case_events_total{type="case.dispatched"}' in text_
    assert 'consumer_events_total{outcome="applied",topic="case.events"}' in text_
    assert 'consumer_events_total{outcome="duplicate",topic="case.events"}' in text_  # the noisy duplicates
    assert 'consumer_lag{partition="' in text_
    assert 'case_id="' not in text_ and 'unit="' not in text_  # bounded labels only, never a case or unit id


async def test_contract_breaking_message_goes_to_the_dlq(client: httpx.AsyncClient, broker: TansuBroker) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        bad = {"id": str(uuid.uuid4()), "type": "case.accepted", "source": "/dispatch", "time": bj(10, 2).isoformat()}
        await producer.send_and_wait(CASE_EVENTS, orjson.dumps({**bad, "schema_version": 1, "correlation_id": "x"}))
    finally:
        await producer.stop()
    [record] = await read_topic(broker.bootstrap, dlq_topic(CASE_EVENTS), expect=1)
    assert dict(record.headers)["dlq_consumer"] == b"metrics"

    async def counted() -> bool:
        return 'dlq_messages_total{topic="case.events"} 1.0' in (await client.get("/metrics")).text

    await eventually(counted)


async def test_jurisdiction_changed_refreshes_unit_names(client: httpx.AsyncClient, broker: TansuBroker) -> None:
    [office] = [u for u in GRID_UNITS if u["id"] == "W"]
    office["name"] = "白沙街道综合行政执法办"  # renamed in grid; the fake grid serves this very list
    change = JurisdictionChanged(county_code="330127", version=2, rules_version=1, digest="d2", change="bundle")
    envelope = make_envelope(
        event_type="jurisdiction.changed",
        data=change,
        source="/grid",
        correlation_id="rename",
        subject="330127",
        time=datetime.now(TZ),
    )
    await ensure_topics(broker.bootstrap, [JURISDICTION_CHANGED])
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            JURISDICTION_CHANGED, envelope.to_bytes(), key=b"330127", headers=envelope.headers()
        )
    finally:
        await producer.stop()

    async def renamed() -> bool:
        rows = (await indicators(client, period="2026-10", unit="W")).json()["rows"]
        return bool(rows and rows[0]["unit_name"] == "白沙街道综合行政执法办")

    await eventually(renamed, timeout_s=30, every_s=0.3)
    ready = (await client.get("/readyz")).json()
    assert ready["checks"]["grid"]["ok"] is True and "5 units" in ready["checks"]["grid"]["detail"]


async def test_sign_off_then_late_event_records_a_revision(
    client: httpx.AsyncClient, broker: TansuBroker, database_url: str, data: Data
) -> None:
    assert (
        await client.post("/v1/periods/2026-10/sign-off", headers={"Authorization": "Bearer t-t1"})
    ).status_code == 403
    not_ended = await client.post("/v1/periods/2026-12/sign-off", headers=ADMIN)
    assert not_ended.status_code == 409 and "ended" in not_ended.text
    signed = await client.post("/v1/periods/2026-10/sign-off", headers=ADMIN)
    assert signed.status_code == 201, signed.text
    assert signed.json()["schemes"]["cityops_professional"] == {"version": 1, "rows": 4}  # A, B, C, W
    assert (await client.post("/v1/periods/2026-10/sign-off", headers=ADMIN)).status_code == 409

    # A late event: a8 (open past its deadline) was in fact resolved on 10-20; the event arrives now.
    a8 = data.fixture["a8"]
    a8.emit("case.resolved", bj(10, 20, 15))
    await publish(broker.bootstrap, a8.envelopes[-1:])

    async def revised() -> dict[str, Any] | None:
        body = (await client.get("/v1/scores/cityops_professional/2026-10", headers=ADMIN)).json()
        return body if body["revision"] is not None else None

    body = await eventually(revised, timeout_s=30, every_s=0.2)
    rows = {r["unit"]: r for r in body["rows"]}
    # Published figure unchanged 公布得分不变: A 82.14 (B)
    assert (rows["A"]["score"], rows["A"]["grade"], body["signed_off"]["signed_by"]) == (
        82.14,
        "B",
        "t-ad…",
    )  # token names are masked
    # Revision beside it: 处置率 8/8 × 30 = 30; 按期 6/8 × 20 = 15; (1 − 1/8) × 20 = 17.5 (返工率 1/8 now);
    # (1 − 2/8) × 20 = 15 (a8 still overdue: resolved after its deadline); (1 − 1/8) × 10 = 8.75 → 86.25 (B)
    assert rows["A"]["revised"]["score"] == 86.25 and rows["A"]["revised"]["grade"] == "B"
    assert rows["B"]["revised"]["score"] == 92.86  # B unchanged
    assert body["revision"]["revision_no"] == 1 and body["revision"]["subjects"] == [f"case:{a8.case_id}"]
    assert {
        "scheme": "cityops_professional",
        "unit": "A",
        "township": "T1",
        "field": "score",
        "published": 82.14,
        "revised": 86.25,
    } in body["revision"]["changes"]
    assert "metrics_score_revisions_total 1.0" in (await client.get("/metrics")).text

    # The same event again (a duplicate) and a change that moves no figure: no new revision.
    a8.emit("case.supervised", bj(11, 2, 9))  # after the period: 督办 counts do not enter the scores
    await publish(broker.bootstrap, [a8.envelopes[-2], a8.envelopes[-1]])

    async def settled() -> bool:
        seen = await scalar(
            database_url, "SELECT count(*) FROM metrics.case_events WHERE event_id = :e", e=a8.envelopes[-1].id
        )
        dirty = await scalar(database_url, "SELECT dirty FROM metrics.period_signoffs WHERE period_id = '2026-10'")
        return bool(seen == 1 and dirty is False)

    await eventually(settled, timeout_s=30, every_s=0.2)
    period = (await client.get("/v1/periods/2026-10", headers=ADMIN)).json()
    assert [r["revision_no"] for r in period["revisions"]] == [1]

    # A township rating changed after sign-off is a revision too.
    await client.put("/v1/ratings/2026-10/T1/PCS-1", json={"rating": 90}, headers=ADMIN)

    async def second() -> dict[str, Any] | None:
        led = (await client.get("/v1/scores/stationed_agency_township_led/2026-10", headers=ADMIN)).json()
        return led if led["revision"] and led["revision"]["revision_no"] == 2 else None

    led = await eventually(second, timeout_s=30, every_s=0.2)
    t1 = next(r for r in led["rows"] if r["township"] == "T1")
    assert (t1["score"], t1["revised"]["score"]) == (81.8, 86.8)  # 40 → 45 for the rating
    assert led["revision"]["subjects"] == ["rating:T1/PCS-1"]

    # The export of a signed-off period shows the published score and the revision beside it.
    exported = await client.get("/v1/export/cityops_professional/2026-10.csv", headers=ADMIN)
    table = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    a = next(row for row in table[1:] if row[1] == "A")
    assert (a[table[0].index("得分")], a[table[0].index("修订得分")]) == ("82.14", "86.25")
