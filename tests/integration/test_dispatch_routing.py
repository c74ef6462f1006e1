"""Dispatch end to end (issue 4): intake → incident.reported → cases, through Tansu and PostgreSQL.

派遣端到端：受理 → incident.reported → 立案派遣；真实 Tansu 与 PostgreSQL，真实网格服务在进程内。
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.dispatch.app import create_app as create_dispatch
from services.dispatch.grid_client import JurisdictionSource
from services.dispatch.identity import case_id_for
from services.dispatch.incidents import handle_incident
from services.grid.app import create_app as create_grid
from services.grid.settings import GridSettings
from shared.db import create_engine, session_factory
from shared.embedded import TansuBroker
from shared.events import IncidentReported
from tests.helpers import eventually, serve
from tests.integration.test_dispatch_support import (
    ADMIN,
    BAISHA,
    DEMO,
    FENGLIN,
    QINGXI,
    STAFF,
    Stack,
    bearer,
    case_events,
    dispatch_instance,
    dispatch_settings,
    platform,
    record,
    shifted,
    wait_ready,
)


@pytest.fixture(scope="module")
async def stack(database_url: str, module_broker: TansuBroker) -> AsyncIterator[Stack]:
    async with platform(database_url, module_broker.bootstrap) as s:
        yield s


# --------------------------------------------------------------------------- the three intake examples


EXPECTED = {
    # source → (township, matter, unit, decided_by)
    "12345": (QINGXI, "SR001", "330127101-zfd", "devolved"),
    "cityops": (BAISHA, "SR002", "330127001-zfd", "devolved"),
    "gridworker": (FENGLIN, "WJ001", "330127102-zfd", "devolved"),
}


@pytest.mark.parametrize("source", ["12345", "cityops", "gridworker"])
async def test_intake_examples_become_dispatched_cases(stack: Stack, source: str) -> None:
    body = record(source, example_spot=True)
    incident = await stack.post(source, body)
    case = await stack.case_of(incident)
    township, matter, unit, decided_by = EXPECTED[source]
    assert case["id"] == str(case_id_for(incident))
    assert (case["state"], case["township"], case["matter"], case["unit"]) == ("dispatched", township, matter, unit)
    assert (case["decided_by"], case["rules_version"], case["jurisdiction_version"]) == (decided_by, 1, 1)
    assert case["deadline"] and case["accept_deadline"] and case["reject_window_ends_at"]
    assert case["explanation"]["unit"] == unit and "已下放至" in case["explanation_zh"]
    assert case["source_id"] == body[{"12345": "ticket_no", "cityops": "case_no", "gridworker": "report_id"}[source]]
    if source == "gridworker":  # bd09 point converted by intake: the worker's own grid
        assert case["grid"] == "330127102001001"

    # the same case by source id (12345 工单号查询)
    listed = await stack.dispatch.get(
        "/v1/cases", params={"source": source, "source_id": case["source_id"]}, headers=ADMIN
    )
    assert [c["id"] for c in listed.json()["items"]] == [case["id"]]

    # published with every field metrics reads
    [dispatched] = await case_events(stack.bootstrap, {case["id"]}, expect=1)
    data = dispatched.data
    assert dispatched.type == "case.dispatched" and dispatched.id == uuid.uuid5(
        uuid.UUID(case["id"]), "2:case.dispatched"
    )
    assert (data.unit, data.unit_kind, data.township, data.matter, data.matter_group) == (
        unit,
        "enforcement_team",
        township,
        matter,
        case["matter_group"],
    )
    assert data.source == source and data.urgency == "normal" and data.time_basis in ("working", "natural")
    assert data.deadline is not None and data.accept_deadline is not None and data.reported_at is not None
    assert data.version == 2 and data.previous_state == "reported" and data.state == "dispatched"
    assert data.details["rules_version"] == 1


async def test_scope_of_reads(stack: Stack) -> None:
    incident = await stack.post("cityops", record("cityops"))  # 白沙街道
    await stack.case_of(await stack.post("12345", record("12345")))  # 青溪镇
    case = await stack.case_of(incident)
    url = f"/v1/cases/{case['id']}"
    assert (await stack.dispatch.get(url, headers=bearer("t-disp-bs"))).status_code == 200
    assert (await stack.dispatch.get(url, headers=bearer("t-disp-qx"))).status_code == 404  # another township
    assert (await stack.dispatch.get(url, headers=bearer("u-330127001-zfd"))).status_code == 200
    assert (await stack.dispatch.get(url, headers=bearer("u-330127101-zfd"))).status_code == 404  # another unit
    assert (await stack.dispatch.get(url)).status_code == 401
    listed = (await stack.dispatch.get("/v1/cases", params={"limit": 500}, headers=bearer("t-disp-qx"))).json()
    assert listed["items"] and all(c["township"] == QINGXI for c in listed["items"])
    mine = (await stack.dispatch.get("/v1/cases", params={"limit": 500}, headers=bearer("u-330127001-zfd"))).json()
    assert case["id"] in {c["id"] for c in mine["items"]}
    assert all(c["unit"] == "330127001-zfd" or "330127001-zfd" in c["cohandlers"] for c in mine["items"])


async def test_cursor_pagination_and_filters(stack: Stack) -> None:
    ids = {str(case_id_for(await stack.post("12345", record("12345", division_code=QINGXI)))) for _ in range(5)}
    for case_id in ids:
        await stack.case_of_id(case_id)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"source": "12345", "limit": 2, "matter": "SR001", "state": "dispatched"}
        if cursor:
            params["cursor"] = cursor
        page = (await stack.dispatch.get("/v1/cases", params=params, headers=ADMIN)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert ids <= set(seen) and len(seen) == len(set(seen))
    window = {"from": (datetime.now(UTC) - timedelta(days=400)).isoformat(), "to": "2000-01-01T00:00:00Z"}
    assert (await stack.dispatch.get("/v1/cases", params=window, headers=ADMIN)).json()["items"] == []


# --------------------------------------------------------------------------- triage, self-handled, merge


async def test_unmapped_category_goes_to_the_triage_queue(stack: Stack) -> None:
    incident = await stack.post("12345", record("12345", category_code="999999"))
    case = await stack.case_of(incident)
    assert (case["state"], case["triage_reason"], case["unit"]) == ("triage", "uncategorised", None)
    queue = (await stack.dispatch.get("/v1/cases", params={"queue": "triage", "limit": 500}, headers=ADMIN)).json()
    assert case["id"] in {c["id"] for c in queue["items"]}
    [event] = await case_events(stack.bootstrap, {case["id"]}, expect=1)
    assert event.type == "case.triage_required" and event.data.triage_reason == "uncategorised"


async def test_self_handled_report_is_closed_not_dispatched(stack: Stack) -> None:
    incident = await stack.post("gridworker", record("gridworker", self_handled=True))
    case = await stack.case_of(incident)
    assert (case["state"], case["unit"], case["snapshot"]["self_handled"]) == ("closed", None, True)
    assert case["snapshot"]["handler"] == "GW330127102007"
    [event] = await case_events(stack.bootstrap, {case["id"]}, expect=1)
    assert event.type == "case.self_handled" and event.data.self_handled and event.data.township == FENGLIN


async def test_two_reports_ten_metres_apart_are_merged(stack: Stack) -> None:
    first = record("cityops", description="人民路暴露垃圾 A")
    second = record("cityops", description="人民路暴露垃圾 B", location=shifted(first["location"], east_m=10))
    one = await stack.case_of(await stack.post("cityops", first))
    two = await stack.case_of(await stack.post("cityops", second))
    assert one["state"] == "dispatched" and one["merged_into"] is None
    assert (two["merged_into"], two["state"], two["unit"]) == (one["id"], "closed", None)
    assert "并案" in two["explanation_zh"]
    detail = (await stack.dispatch.get(f"/v1/cases/{one['id']}", headers=ADMIN)).json()
    assert two["id"] in detail["duplicates"]
    [merged] = await case_events(stack.bootstrap, {two["id"]}, expect=1)
    assert merged.type == "case.merged" and str(merged.data.merged_into) == one["id"]
    # far enough away: a case of its own
    three = await stack.case_of(await stack.post("cityops", record("cityops")))
    assert three["merged_into"] is None and three["state"] == "dispatched"


async def test_repeat_12345_caller_is_linked(stack: Stack) -> None:
    phone = "139" + str(uuid.uuid4().int)[:8]
    first = record("12345", caller={"name": "赵女士", "phone": phone})
    again = record(
        "12345",
        caller={"name": "赵女士", "phone": phone},
        title="再次反映桥头占道",
        location=shifted(first["location"], east_m=30),
    )
    one = await stack.case_of(await stack.post("12345", first))
    two = await stack.case_of(await stack.post("12345", again))
    assert two["merged_into"] == one["id"]


async def test_parallel_replicas_merge_the_same_spot(stack: Stack) -> None:
    """Two transactions (as two replicas would) handle reports of one spot at once: one case, one merged.

    两个事务（如两个副本）同时处理同一地点的报告：只有一个案件，另一个并案。"""
    loaded = stack.dispatch_app.state.dispatch.source.current
    assert loaded is not None
    engine = create_engine(stack.database_url, pool_size=4)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    base = {
        "source": "cityops",
        "reported_at": now - timedelta(minutes=1),
        "received_at": now,
        "description": "并发并案测试",
        "category_codes": {"kind": "event", "major_code": "01", "minor_code": "002"},
        "category_key": "01-002",
        "reporter_kind": "supervisor",
        "location": {"lng": 119.0702, "lat": 29.5901, "original_crs": "wgs84", "original_lng": 119.0702,
                     "original_lat": 29.5901},
    }  # fmt: skip
    events = [
        IncidentReported.model_validate(
            {**base, "event_id": uuid.uuid4(), "source_id": f"PAR-{i}-{uuid.uuid4().hex[:6]}"}
        )
        for i in range(2)
    ]
    started = asyncio.Event()

    async def replica(event: IncidentReported, hold: bool) -> Any:
        async with sessions() as session, session.begin():
            outcome = await handle_incident(
                session=session, event=event, jurisdiction=loaded, correlation_id="t"
            )
            if hold:  # keep the first transaction open while the second one runs
                started.set()
                await asyncio.sleep(1.0)
            return outcome

    async def second() -> Any:
        await started.wait()
        return await replica(events[1], False)

    try:
        first_outcome, second_outcome = await asyncio.gather(replica(events[0], True), second())
    finally:
        await engine.dispose()
    assert first_outcome.outcome == "dispatch" and first_outcome.merged_into is None
    assert second_outcome.outcome == "merged" and second_outcome.merged_into == first_outcome.case_id


# --------------------------------------------------------------------------- rule change, replay, readiness


async def test_rule_change_applies_to_the_next_event_only(stack: Stack) -> None:
    before = await stack.case_of(await stack.post("12345", record("12345")))
    assert (before["unit"], before["rules_version"]) == ("330127101-zfd", 1)
    rules = [
        {
            "id": "qingxi-bridge-vendors",
            "priority": 1,
            "description": "青溪镇桥头占道经营由平安法治办公室主办",
            "conditions": {"township": [QINGXI], "matter": ["SR001"], "keywords": ["桥头"]},
            "action": {"unit": "330127101-pafz", "cohandlers": ["pz-pcs-qingxi"], "deadline_hours": 16},
        }
    ]
    response = await stack.grid.put("/v1/counties/330127/rules", json=rules, headers=ADMIN)
    assert response.status_code == 200, response.text
    rules_version = response.json()["rules_version"]
    assert rules_version == 2
    source = stack.dispatch_app.state.dispatch.source

    async def reloaded() -> bool:
        return source.snapshot is not None and source.snapshot.rules_version == rules_version

    await eventually(reloaded, timeout_s=30)
    after = await stack.case_of(await stack.post("12345", record("12345")))
    assert (after["unit"], after["rules_version"], after["rule_id"], after["decided_by"]) == (
        "330127101-pafz",
        2,
        "qingxi-bridge-vendors",
        "rule",
    )
    assert after["cohandlers"] == ["pz-pcs-qingxi"] and after["version"] == 3  # dispatched + co-handler added
    old = (await stack.dispatch.get(f"/v1/cases/{before['id']}", headers=ADMIN)).json()
    assert (old["unit"], old["rules_version"], old["rule_id"]) == ("330127101-zfd", 1, None)
    events = await case_events(stack.bootstrap, {after["id"]}, expect=2)
    added = next(e for e in events if e.type == "case.cohandler_added")
    assert added.data.unit == "pz-pcs-qingxi"  # metrics: under this type unit = the co-handler
    # restore the demo rules for the other tests 恢复示范规则
    demo_rules = (await stack.grid.get("/v1/counties/330127/rules/1", headers=ADMIN)).json()
    restored = await stack.grid.put("/v1/counties/330127/rules", json=demo_rules, headers=ADMIN)
    assert restored.status_code == 200, restored.text
    new_version = restored.json()["rules_version"]
    await eventually(lambda: _rules_at(source, new_version), timeout_s=30)


async def _rules_at(source: JurisdictionSource, version: int) -> bool:
    return source.snapshot is not None and source.snapshot.rules_version == version


async def test_replay_from_offset_zero_creates_nothing_new(stack: Stack) -> None:
    incidents = [await stack.post(s, record(s)) for s in ("12345", "cityops", "gridworker")]
    cases = [await stack.case_of(i) for i in incidents]
    ids = [uuid.UUID(c["id"]) for c in cases]
    await case_events(stack.bootstrap, {str(i) for i in ids}, expect=3)

    async def counts() -> tuple[int, int]:
        [(n_cases,)] = await stack.sql("SELECT count(*) FROM dispatch.cases WHERE id = ANY(:ids)", ids=ids)
        [(n_rows,)] = await stack.sql(
            "SELECT count(*) FROM dispatch.case_transitions WHERE case_id = ANY(:ids)", ids=ids
        )
        return n_cases, n_rows

    before = await counts()
    group = f"dispatch-replay-{uuid.uuid4().hex[:8]}"
    async with dispatch_instance(stack.grid_app, stack.database_url, stack.bootstrap, incident_group_id=group) as (
        _,
        replica,
    ):
        await wait_ready(replica)

        async def replayed() -> bool:
            rows = await stack.sql(
                "SELECT count(*) FROM dispatch.processed_messages WHERE consumer = :g AND event_id = ANY(:ids)",
                g=group,
                ids=incidents,
            )
            return bool(rows[0][0] == len(incidents))

        await eventually(replayed, timeout_s=60, every_s=0.3)
    assert await counts() == before == (3, 6)
    await asyncio.sleep(1.0)  # let any (wrong) republication reach the topic
    events = await case_events(stack.bootstrap, {str(i) for i in ids}, expect=3)
    dispatched = [e for e in events if e.type == "case.dispatched"]
    assert len(dispatched) == 3 and len({e.id for e in dispatched}) == 3


async def test_readyz_is_503_until_the_grid_has_a_jurisdiction(own_database_url: str, kafka: TansuBroker) -> None:
    """The real grid with nothing imported: dispatch is not ready and consumes no incident; after the
    import it loads the snapshot and starts. 网格服务尚无辖区时派遣不就绪、不消费；导入后就绪。"""
    grid_app = create_grid(
        GridSettings(
            database_url=own_database_url,
            kafka_bootstrap_servers=kafka.bootstrap,
            staff_tokens=STAFF,
            outbox_poll_interval_s=0.1,
            log_json=False,
        )
    )
    async with serve(grid_app) as grid:
        app = create_dispatch(
            dispatch_settings(own_database_url, kafka.bootstrap), grid_transport=httpx.ASGITransport(app=grid_app)
        )
        async with serve(app) as client:

            async def refused_for_want_of_a_jurisdiction() -> bool:
                # Wait for the state (grid answered 404), not for a moment: before grid's first
                # answer the detail says "loading". 等待状态（网格答 404），而非某一时刻。
                response = await client.get("/readyz")
                assert response.status_code == 503
                check = response.json()["checks"]["jurisdiction"]
                assert check["ok"] is False
                return "404" in check["detail"]

            await eventually(refused_for_want_of_a_jurisdiction, timeout_s=30)
            runtime = app.state.dispatch.runtime
            assert not any(c.group_id.startswith("dispatch-test") for c in runtime.consumers)
            imported = await grid.put(
                "/v1/jurisdiction", content=DEMO, headers={**ADMIN, "Content-Type": "application/json"}
            )
            assert imported.status_code == 200, imported.text
            await wait_ready(client)
            snap = app.state.dispatch.source.snapshot
            assert (snap.county_code, snap.version, snap.rules_version) == ("330127", 1, 1)
            assert any(c.group_id.startswith("dispatch-test") for c in runtime.consumers)
