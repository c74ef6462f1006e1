"""What-if equals a real re-route: the same reports routed into a scratch database with the changed list.

模拟调整等于真实重新派遣：同一批上报以改动后的清单派遣进临时数据库，逐案比较；模拟不写库、不发事件。
Real PostgreSQL, the real ``handle_incidents``; the API and the xlsx through real HTTP (ASGI).
"""

from __future__ import annotations

import copy
import io
import json
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.incidents import handle_incidents
from services.dispatch.routing import route
from services.dispatch.whatif_store import XLSX_MEDIA_TYPE, WhatIfInvalidError, WhatIfRequest, run_what_if
from shared.calendar import load_calendar
from shared.db import create_engine, session_factory
from shared.embedded import TansuBroker
from shared.events import CallerRef, GeoPoint, IncidentReported, make_envelope
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot
from shared.jurisdiction.devolution import ProposedItem, local_day
from tests.conftest import create_database, drop_database
from tests.helpers import eventually
from tests.integration.test_dispatch_support import ADMIN, DISPATCHER, Stack, platform, record, unit

ROOT = Path(__file__).resolve().parents[2]
DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
CST = timezone(timedelta(hours=8))
BAISHA, QINGXI, FENGLIN = "330127001", "330127101", "330127102"
#: 12345 codes of the matters the proposal touches, and a few it does not. 提案涉及与不涉及的事项编码。
KEYS = {
    "WJ002": "010202",
    "SC001": "020101",
    "SR001": "010101",
    "SR002": "010102",
    "WJ001": "010201",
    "HB003": "030103",
}
PROPOSAL = [
    ProposedItem(township=FENGLIN, matter="WJ002", mode="entrusted"),  # agency → 枫林镇执法队 (委托)
    ProposedItem(township=QINGXI, matter="WJ002", mode="none"),  # 青溪镇执法队 → agency (收回)
    ProposedItem(township=BAISHA, matter="SC001", mode="devolved"),  # 白沙所 → 白沙街道执法队
    ProposedItem(township=QINGXI, matter="SR001", mode="assist"),  # 执法队 → 城管局 (no agency), 执法队 协办
    ProposedItem(township=FENGLIN, matter="SC001", mode="assist"),  # stays with 青溪所, 枫林镇执法队 协办
]
PERIOD = (date(2026, 10, 1), date(2026, 10, 31))


def changed_bundle() -> JurisdictionBundle:
    """The demo bundle with the proposal written in by hand, on every day (independent of the what-if's code)."""
    data = copy.deepcopy(DEMO)
    data["devolution"][QINGXI].remove("WJ002")
    data["devolution"][QINGXI].remove("SR001")
    data["devolution"][BAISHA].append("SC001")
    data["devolution_entries"] = [
        *data.get("devolution_entries", []),
        {"township": FENGLIN, "matter": "WJ002", "mode": "entrusted", "document": "提案"},
        {"township": QINGXI, "matter": "SR001", "mode": "assist", "document": "提案"},
        {"township": FENGLIN, "matter": "SC001", "mode": "assist", "document": "提案"},
    ]
    return JurisdictionBundle.model_validate(data)


def reports(snapshot: JurisdictionSnapshot, n: int) -> list[IncidentReported]:
    rng = random.Random(17)
    grids = [d for d in snapshot.divisions("grid") if d.geometry is not None]
    out = []
    for i in range(n):
        grid = rng.choice(grids)
        point = grid.geometry.representative_point()
        lng, lat = float(point.x) + rng.uniform(-3e-4, 3e-4), float(point.y) + rng.uniform(-3e-4, 3e-4)
        matter = rng.choice(list(KEYS))
        at = datetime(2026, 9, 30, 20, tzinfo=CST) + timedelta(minutes=rng.randrange(0, 60 * 24 * 32))
        text_ = rng.choice(["占道摆摊", "有人闻到燃气味", "群众反映问题", "液化气罐堆放"])
        out.append(
            IncidentReported(
                event_id=uuid.UUID(int=rng.getrandbits(128)),
                source="12345",
                source_id=f"WI-{i}",
                reported_at=at,
                received_at=at + timedelta(minutes=rng.randrange(0, 90)),
                title=None,
                description=text_,
                category_codes={"category_code": KEYS[matter]},
                category_key=KEYS[matter],
                location=GeoPoint(lng=lng, lat=lat, original_lng=lng, original_lat=lat),
                urgency=rng.choice(["normal", "normal", "urgent", "critical"]),
                reporter_kind="caller",
                appeal_type=rng.choice(["complaint", "report", "praise"]),
                caller=CallerRef(phone_hash=None),
            )
        )
    return out


async def route_into(url: str, events: list[IncidentReported], loaded: LoadedJurisdiction) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        for start in range(0, len(events), 100):
            batch = events[start : start + 100]
            envelopes = [
                make_envelope(
                    event_type="incident.reported",
                    data=e,
                    source="/intake/12345",
                    correlation_id="whatif-test",
                    subject=str(e.event_id),
                    time=e.received_at,
                    event_id=e.event_id,
                )
                for e in batch
            ]
            async with session_factory(engine)() as session, session.begin():
                await handle_incidents(session=session, envelopes=envelopes, jurisdiction=loaded)
    finally:
        await engine.dispose()


CASES_SQL = (
    "SELECT id, unit, matter, explanation FROM dispatch.cases WHERE reported_at >= :a AND reported_at < :b "
    "AND merged_into IS NULL AND (unit IS NOT NULL OR triage_reason IS NOT NULL)"
)


async def cases_of(url: str) -> dict[uuid.UUID, tuple[str | None, str | None, float]]:
    """Each counted case: unit, matter and its 办结 time limit in hours (from its routing facts)."""
    calendar = load_calendar(county="330127")
    engine = create_engine(url, pool_size=1)
    bounds = {
        "a": datetime(2026, 10, 1, tzinfo=CST),
        "b": datetime(2026, 11, 1, tzinfo=CST),
    }
    try:
        async with session_factory(engine)() as session:
            rows = (await session.execute(text(CASES_SQL), bounds)).all()
    finally:
        await engine.dispose()
    out = {}
    for r in rows:
        facts = r.explanation
        hours = facts.get("deadline_hours")
        if hours is None and facts.get("deadline_working_days") is not None:
            hours = facts["deadline_working_days"] * calendar.hours_per_day
        out[r.id] = (r.unit, r.matter, float(hours or 0.0))
    return out


@pytest.fixture(scope="module")
async def scenario(postgres_server_url: str) -> AsyncIterator[dict[str, Any]]:
    calendar = load_calendar(county="330127")
    before = JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=1, rules_version=1)
    after = JurisdictionSnapshot(changed_bundle(), version=1, rules_version=1)
    events = reports(before, 600)
    real = await create_database(postgres_server_url, ("dispatch",))
    scratch = await create_database(postgres_server_url, ("dispatch",))
    try:
        await route_into(real, events, LoadedJurisdiction(before, calendar))
        await route_into(scratch, events, LoadedJurisdiction(after, calendar))
        yield {
            "real": real,
            "before": before,
            "calendar": calendar,
            "real_cases": await cases_of(real),
            "scratch_cases": await cases_of(scratch),
        }
    finally:
        await drop_database(postgres_server_url, real)
        await drop_database(postgres_server_url, scratch)


async def what_if_on(url: str, loaded: LoadedJurisdiction, request: WhatIfRequest) -> dict[str, Any]:
    engine = create_engine(url, pool_size=1)
    try:
        async with session_factory(engine)() as session, session.begin():
            counts = "SELECT (SELECT count(*) FROM dispatch.cases), (SELECT count(*) FROM dispatch.outbox)"
            written = (await session.execute(text(counts))).one()
            answer = await run_what_if(session=session, jurisdiction=loaded, request=request)
            assert (await session.execute(text(counts))).one() == written  # no writes, no events
    finally:
        await engine.dispose()
    return answer


REQUEST = WhatIfRequest(items=PROPOSAL, reported_from=PERIOD[0], reported_to=PERIOD[1], threshold_pct=10)


async def test_what_if_equals_a_real_re_route(scenario: dict[str, Any]) -> None:
    real, scratch = scenario["real_cases"], scenario["scratch_cases"]
    assert set(real) == set(scratch) and len(real) > 400
    loaded = LoadedJurisdiction(scenario["before"], scenario["calendar"])
    answer = await what_if_on(scenario["real"], loaded, REQUEST)

    assert answer["cases"] == len(real)
    moved = Counter((m, real[c][0], scratch[c][0]) for c, (_, m, _) in real.items() if real[c][0] != scratch[c][0])
    assert moved, "the proposal moves cases"
    assert {(m["matter"], m["from_unit"], m["to_unit"]): m["cases"] for m in answer["moves"]} == dict(moved)
    assert answer["moved_cases"] == sum(moved.values())

    def load(cases: dict[uuid.UUID, tuple[str | None, str | None, float]]) -> dict[str | None, tuple[int, float]]:
        counts: Counter[str | None] = Counter(u for u, _, _ in cases.values())
        hours: dict[str | None, float] = {}
        for u, _, h in cases.values():
            hours[u] = hours.get(u, 0.0) + h
        return {u: (counts[u], round(hours[u], 2)) for u in counts}

    before, after = load(real), load(scratch)
    units = {u["unit"]: u for u in answer["units"]}
    assert {u: (x["cases_before"], x["hours_before"]) for u, x in units.items() if x["cases_before"]} == before
    assert {u: (x["cases_after"], x["hours_after"]) for u, x in units.items() if x["cases_after"]} == after

    # Townships: their own units summed; 白沙街道 and 枫林镇 gain work, 青溪镇 hands WJ002 back.
    townships = {t["township"]: t for t in answer["townships"]}
    own = {t: [u for u in units.values() if u["township"] == t] for t in (BAISHA, QINGXI, FENGLIN)}
    for code, listed in own.items():
        assert townships[code]["hours_after"] == pytest.approx(sum(u["hours_after"] for u in listed))
    assert townships[BAISHA]["hours_after"] > townships[BAISHA]["hours_before"]
    assert townships[FENGLIN]["over_threshold"] is (townships[FENGLIN]["growth_pct"] > 10)


async def test_unknown_or_unhandled_proposals_are_refused(scenario: dict[str, Any]) -> None:
    loaded = LoadedJurisdiction(scenario["before"], scenario["calendar"])
    bad = WhatIfRequest(
        items=[
            ProposedItem(township="330127999", matter="WJ002", mode="devolved"),
            ProposedItem(township=QINGXI, matter="ZZ999", mode="devolved"),
            ProposedItem(township=QINGXI, matter="ZJ005", mode="devolved"),  # 路灯: no "urban" unit in 青溪镇
        ],
        reported_from=PERIOD[0],
        reported_to=PERIOD[1],
    )
    with pytest.raises(WhatIfInvalidError) as caught:
        await what_if_on(scenario["real"], loaded, bad)
    paths = {p.path.split(".")[0] for p in caught.value.problems}
    assert paths == {"items[0]", "items[1]", "items[2]"}


@pytest.fixture(scope="module")
async def stack(database_url: str, module_broker: TansuBroker) -> AsyncIterator[Stack]:
    async with platform(database_url, module_broker.bootstrap) as s:
        yield s


async def test_the_api_answers_json_and_xlsx(stack: Stack) -> None:
    case = await stack.case_of(await stack.post("12345", record("12345")))
    assert (case["unit"], case["matter"], case["township"]) == ("330127101-zfd", "SR001", QINGXI)
    day = local_day(datetime.fromisoformat(case["reported_at"])).isoformat()
    body = {
        "items": [{"township": QINGXI, "matter": "SR001", "mode": "none"}],
        "reported_from": day,
        "reported_to": day,
        "threshold_pct": 5,
    }
    response = await stack.dispatch.post("/v1/whatif", json=body, headers=DISPATCHER)
    assert response.status_code == 200, response.text
    answer = response.json()
    # 占道经营 returned by 青溪镇: 城管局 has no stationed agency there, so the county department takes it.
    assert answer["moves"] == [
        {
            "matter": "SR001",
            "matter_name": "占道经营",
            "from_unit": "330127101-zfd",
            "from_name": answer["moves"][0]["from_name"],
            "to_unit": "dept-cgj",
            "to_name": answer["moves"][0]["to_name"],
            "cases": answer["moved_cases"],
            "hours": answer["moves"][0]["hours"],
        }
    ]
    assert answer["moved_cases"] >= 1
    qingxi = next(t for t in answer["townships"] if t["township"] == QINGXI)
    assert qingxi["hours_after"] < qingxi["hours_before"] and qingxi["over_threshold"] is False

    xlsx = await stack.dispatch.post("/v1/whatif.xlsx", json=body, headers=DISPATCHER)
    assert xlsx.status_code == 200 and xlsx.headers["content-type"].startswith(XLSX_MEDIA_TYPE)
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["提案", "改派", "单位负荷", "镇街负荷"]
    moves = list(book["改派"].iter_rows(values_only=True))
    assert moves[0][:3] == ("事项", "事项名称", "原单位") and moves[1][0] == "SR001" and moves[1][4] == "dept-cgj"

    refused = await stack.dispatch.post(
        "/v1/whatif",
        json={**body, "items": [{"township": QINGXI, "matter": "NOPE", "mode": "devolved"}]},
        headers=DISPATCHER,
    )
    assert refused.status_code == 422 and refused.json()["problems"][0]["path"].startswith("items[0]")
    assert (await stack.dispatch.post("/v1/whatif", json=body, headers=unit("330127101-zfd"))).status_code == 403
    township_bound = {"Authorization": "Bearer t-disp-qx"}  # a township's dispatcher: not the whole county
    assert (await stack.dispatch.post("/v1/whatif", json=body, headers=township_bound)).status_code == 403
    backwards = {**body, "reported_from": "2026-12-01", "reported_to": "2026-11-01"}
    assert (await stack.dispatch.post("/v1/whatif", json=backwards, headers=DISPATCHER)).status_code == 422


async def test_a_recorded_decision_reaches_dispatch_and_routes_from_its_day(stack: Stack) -> None:
    """Grid records the decision → jurisdiction.changed → dispatch reloads → reports from that day route by it."""
    tomorrow = local_day(datetime.now(CST)) + timedelta(days=2)  # clear of a Shanghai midnight
    decision = {
        "document": "青政发〔2026〕88号",
        "items": [
            {"township": FENGLIN, "matter": "WJ002", "mode": "entrusted", "effective_from": tomorrow.isoformat()}
        ],
    }
    response = await stack.grid.post("/v1/counties/330127/devolution/changes", json=decision, headers=ADMIN)
    assert response.status_code == 200, response.text
    version = response.json()["version"]
    source = stack.dispatch_app.state.dispatch.source
    await eventually(lambda: _at_least(source, version))
    snapshot = source.current.snapshot
    calendar = source.current.calendar
    point = snapshot.division("330127102001001").geometry.representative_point()
    on_the_day = datetime.combine(tomorrow, datetime.min.time(), CST) + timedelta(hours=9)
    day_before = on_the_day - timedelta(days=1)
    decided = {}
    for name, at in (("before", day_before), ("on", on_the_day)):
        event = reports(snapshot, 1)[0].model_copy(
            update={
                "reported_at": at,
                "received_at": at,
                "category_key": KEYS["WJ002"],
                "category_codes": {"category_code": KEYS["WJ002"]},
                "description": "违法建房",
                "location": GeoPoint(lng=point.x, lat=point.y, original_lng=point.x, original_lat=point.y),
            }
        )
        decided[name] = route(event, snapshot, now=at, calendar=calendar)
    assert decided["before"].unit == "pz-zrzys-qingxi"
    assert (decided["on"].unit, decided["on"].enforcement_subject) == ("330127102-zfd", "dept-zrzyj")
    assert "青政发〔2026〕88号" in decided["on"].explanation_zh


async def _at_least(source: Any, version: int) -> bool:
    return source.snapshot is not None and source.snapshot.version >= version
