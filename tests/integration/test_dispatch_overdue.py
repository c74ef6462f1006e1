"""Overdue sweep across replicas and the SSE stream (issue 5). 超期扫描（多副本）与事件流。"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.event import listen, remove

from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.incidents import handle_incident
from services.dispatch.sweep import due_cases, ordered_scan, sweep_overdue
from shared.calendar import load_calendar
from shared.db import create_engine, session_factory
from shared.embedded import TansuBroker
from shared.events import IncidentReported
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot
from tests.helpers import eventually, plan_reads_of
from tests.integration.test_dispatch_batch import DEMO
from tests.integration.test_dispatch_support import (
    ADMIN,
    Stack,
    bearer,
    case_events,
    dispatch_instance,
    platform,
    record,
    unit,
    wait_ready,
)

SWEEP_S = 0.3


@pytest.fixture(scope="module")
async def stack(database_url: str, kafka: TansuBroker) -> AsyncIterator[Stack]:
    async with platform(database_url, kafka.bootstrap, overdue_sweep_interval_s=SWEEP_S) as s:
        yield s


def incident(key: str, lng: float, lat: float, reported_at: datetime, **kw: Any) -> IncidentReported:
    return IncidentReported.model_validate(
        {
            "event_id": uuid.uuid4(),
            "source": "12345",
            "source_id": f"OD-{uuid.uuid4().hex[:10]}",
            "reported_at": reported_at,
            "received_at": reported_at,
            "description": kw.pop("description", "超期测试"),
            "category_codes": {"category_code": key},
            "category_key": key,
            "reporter_kind": "caller",
            "appeal_type": "complaint",
            "location": {"lng": lng, "lat": lat, "original_crs": "wgs84", "original_lng": lng, "original_lat": lat},
            **kw,
        }
    )


async def create_as_of(stack: Stack, events: list[IncidentReported], as_of: datetime) -> list[uuid.UUID]:
    """Create cases as the service would have at ``as_of`` (history), committed. 以历史时间立案。"""
    loaded = stack.dispatch_app.state.dispatch.source.current
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        async with session_factory(engine)() as session, session.begin():
            ids = []
            for event in events:
                outcome = await handle_incident(
                    session=session, event=event, jurisdiction=loaded, correlation_id="test"
                )
                ids.append(outcome.case_id)
    finally:
        await engine.dispose()
    return ids


async def test_overdue_flagged_once_by_two_replicas(stack: Stack) -> None:
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    events = [
        # 暴露垃圾 (24 h natural) at spread points of 青溪镇: overdue by now
        *[incident("010102", 119.05 + i * 0.002, 29.60, three_days_ago) for i in range(12)],
        # 电梯困人 (auto-escalate when overdue): escalated to 市场监管局
        incident("020201", 119.07, 29.61, three_days_ago),
    ]
    fresh = incident("010102", 119.09, 29.585, datetime.now(UTC))
    ids = await create_as_of(stack, events, three_days_ago)
    [fresh_id] = await create_as_of(stack, [fresh], datetime.now(UTC))

    async with dispatch_instance(
        stack.grid_app, stack.database_url, stack.bootstrap, overdue_sweep_interval_s=SWEEP_S
    ) as (_, replica):
        await wait_ready(replica)

        async def all_flagged() -> bool:
            rows = await stack.sql("SELECT count(*) FROM dispatch.cases WHERE id = ANY(:ids) AND overdue", ids=ids)
            return bool(rows[0][0] == len(ids))

        await eventually(all_flagged, timeout_s=30)
        await asyncio.sleep(3 * SWEEP_S)  # more sweeps by both replicas: nothing more may happen

    per_case = await stack.sql(
        "SELECT case_id, count(*) FROM dispatch.case_transitions WHERE event_type = 'case.overdue' "
        "AND case_id = ANY(:ids) GROUP BY case_id",
        ids=ids,
    )
    assert len(per_case) == len(ids) and all(n == 1 for _, n in per_case)
    # On Kafka: one case.overdue per case, however many sweeps of two replicas ran.
    keys = {str(i) for i in ids}

    async def overdue_published() -> bool:
        events = await case_events(stack.bootstrap, keys, expect=0)
        return sum(1 for e in events if e.type == "case.overdue") >= len(ids)

    await eventually(overdue_published, timeout_s=30)
    await asyncio.sleep(1.0)  # let any (wrong) second publication reach the topic
    overdue_events = [e for e in await case_events(stack.bootstrap, keys, expect=0) if e.type == "case.overdue"]
    assert sorted(str(e.data.case_id) for e in overdue_events) == sorted(keys)
    fresh_case = (await stack.dispatch.get(f"/v1/cases/{fresh_id}", headers=ADMIN)).json()
    assert fresh_case["overdue"] is False

    elevator = (await stack.dispatch.get(f"/v1/cases/{ids[-1]}", headers=ADMIN)).json()
    assert elevator["overdue"] is True and elevator["snapshot"]["escalation"]["department"] == "dept-scjgj"
    assert (await stack.dispatch.get(f"/v1/cases/{ids[-1]}", headers=unit("dept-cgj"))).status_code == 404
    overdue_list = (
        await stack.dispatch.get("/v1/cases", params={"overdue": "true", "limit": 500}, headers=ADMIN)
    ).json()
    assert {str(i) for i in ids} <= {c["id"] for c in overdue_list["items"]}
    garbage = (await stack.dispatch.get(f"/v1/cases/{ids[0]}/timeline", headers=ADMIN)).json()["entries"]
    assert [e["event_type"] for e in garbage][-1] == "case.overdue"
    assert garbage[-1]["actor_role"] == "system"


# --------------------------------------------------------------------------- SSE 事件流


def parse_sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.strip()
        if "event" in fields:
            events.append(fields)
    return events


async def test_stream_sends_changes_in_scope_and_resumes(stack: Stack) -> None:
    [(start,)] = await stack.sql("SELECT coalesce(max(id), 0) FROM dispatch.case_transitions")
    client = stack.dispatch

    async def stream(headers: dict[str, str], **params: Any) -> httpx.Response:
        return await client.get("/v1/stream", params=params, headers=headers)

    # the admin's stream is open before anything happens 先打开事件流
    admin_stream = asyncio.create_task(stream(ADMIN, after=start, max_events=3, max_seconds=30))
    other_unit = asyncio.create_task(stream(unit("330127101-zfd"), after=start, max_seconds=3))
    await asyncio.sleep(0.3)
    case = await stack.case_of(await stack.post("cityops", record("cityops")))
    accepted = await client.post(
        f"/v1/cases/{case['id']}/actions/accept", json={"expected_version": 2}, headers=unit("330127001-zfd")
    )
    assert accepted.status_code == 200

    response = await admin_stream
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert [e["event"] for e in events] == ["case.reported", "case.dispatched", "case.accepted"]
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and ids[0] > start
    assert all(case["id"] in e["data"] for e in events)

    # resume after the first one with Last-Event-ID 断点续传
    resumed = await client.get(
        "/v1/stream", params={"max_events": 2, "max_seconds": 10}, headers={**ADMIN, "Last-Event-ID": str(ids[0])}
    )
    assert [int(e["id"]) for e in parse_sse(resumed.text)] == ids[1:]

    # scope (judged on the case as it is now): 白沙 unit sees its case's whole history; a 青溪 unit
    # sees nothing of it 按案件当前归属判定范围：本单位可见其全部流转，他单位不可见
    mine = await stream(unit("330127001-zfd"), after=start, max_events=3, max_seconds=10)
    assert [e["event"] for e in parse_sse(mine.text)] == ["case.reported", "case.dispatched", "case.accepted"]
    theirs = await other_unit
    assert all(case["id"] not in e["data"] for e in parse_sse(theirs.text))
    township = await stream(bearer("t-disp-qx"), after=start, max_seconds=1)
    assert all(case["id"] not in e["data"] for e in parse_sse(township.text))


async def test_the_sweep_reads_its_partial_index_not_every_case(own_database_url: str) -> None:
    """With thousands of open cases, none yet due, the sweep's query reads ``ix_cases_overdue_sweep``
    (its conditions prove the index's predicate) instead of every case on each pass.
    数千件在办案件、均未到期时，超期扫描走部分索引，而非每轮读遍全部案件。"""
    engine = create_engine(own_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO dispatch.cases (id, incident_id, source, source_id, state, version, urgency, "
                    "reported_at, deadline, explanation, snapshot, incident) "
                    "SELECT gen_random_uuid(), gen_random_uuid(), 'cityops', g::text, 'dispatched', 2, 'normal', "
                    "now(), now() + g * interval '1 minute', '{}', '{}', '{}' FROM generate_series(1, 5000) g"
                )
            )
            await conn.execute(text("ANALYZE dispatch.cases"))
            statement = due_cases(now=datetime.now(UTC), limit=200)
            compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
            plan = "\n".join((await conn.execute(text(f"EXPLAIN {compiled}"))).scalars())
    finally:
        await engine.dispose()
    assert "ix_cases_overdue_sweep" in plan, plan
    assert "Seq Scan" not in plan, plan


async def test_a_pass_reads_as_many_cases_as_it_flags_after_a_history_import(own_database_url: str) -> None:
    """After a history import every case's deadline is past and nothing has statistics yet (a server
    without autovacuum, a table just filled). A pass still reads the sweep's index in deadline order
    and stops at its limit: the limit's worth of cases, none of the year's closed cases among them,
    never every due case collected and sorted (5.4 s a pass at 2 M cases).
    历史导入后所有期限均已过、尚无统计信息：每轮仍按期限顺序读索引、取满即止，不读已结案件，不把全部到期案件收集排序。"""
    engine = create_engine(own_database_url)
    limit = 200
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE dispatch.cases SET (autovacuum_enabled = false)"))
            await conn.execute(
                text(
                    "INSERT INTO dispatch.cases (id, incident_id, source, source_id, state, version, urgency, "
                    "reported_at, deadline, explanation, snapshot, incident) "
                    "SELECT gen_random_uuid(), gen_random_uuid(), 'cityops', g::text, "
                    "CASE WHEN g % 2 = 0 THEN 'closed' ELSE 'dispatched' END, 2, 'normal', "
                    "now() - interval '400 days', now() - interval '300 days' + g * interval '1 minute', "
                    "'{}', '{}', '{}' FROM generate_series(1, 20000) g"
                )
            )
        statement = due_cases(now=datetime.now(UTC), limit=limit)
        compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
        async with session_factory(engine)() as session, session.begin():
            async with ordered_scan(session):
                explained = (await session.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}"))).scalar_one()
            rows = (await session.execute(statement)).all()
    finally:
        await engine.dispose()
    [plan] = explained
    reads = plan_reads_of(plan["Plan"], "cases")
    assert [r["Node Type"] for r in reads] == ["Index Scan"], reads
    assert reads[0]["Index Name"] == "ix_cases_overdue_sweep"
    assert reads[0]["Actual Rows"] == limit and reads[0].get("Rows Removed by Filter", 0) == 0, reads
    assert len(rows) == limit


async def test_a_pass_writes_its_cases_together_and_only_what_changed(own_database_url: str) -> None:
    """One pass over 30 due cases (one of them a matter that escalates when overdue) writes them as a
    batch of actions is written: a fixed number of statements whatever the number of cases, and only
    the changed columns, so no case's explanation (≈ 1.8 KB compressed) is compressed and stored again.
    Each case is flagged once, the elevator case escalated too, with its timeline rows and events.
    一轮扫描一并写入：语句数与案件数无关，只写变化的列（不重写案件说明）；每件标记一次，电梯困人件同时吹哨。"""
    snapshot = JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=1, rules_version=1)
    loaded = LoadedJurisdiction(snapshot, load_calendar(county=snapshot.county_code))
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    events = [incident("010102", 119.05 + i * 0.0007, 29.60, three_days_ago) for i in range(29)]  # 68 m apart
    events.append(incident("020201", 119.07, 29.61, three_days_ago))  # 电梯困人: auto-escalates
    engine = create_engine(own_database_url)
    statements: list[str] = []
    try:
        async with session_factory(engine)() as session, session.begin():
            ids = [
                (await handle_incident(session=session, event=e, jurisdiction=loaded, correlation_id="t")).case_id
                for e in events
            ]

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        async with session_factory(engine)() as session, session.begin():
            listen(engine.sync_engine, "before_cursor_execute", count)
            try:
                flagged = await sweep_overdue(
                    session=session, now=datetime.now(UTC), jurisdiction=loaded, correlation_id="sweep", limit=200
                )
            finally:
                remove(engine.sync_engine, "before_cursor_execute", count)
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT case_id, array_agg(event_type ORDER BY version) FROM dispatch.case_transitions "
                    "WHERE case_id = ANY(:ids) AND event_type IN ('case.overdue', 'case.escalated') GROUP BY case_id"
                ),
                {"ids": ids},
            )
            per_case = {case_id: list(types) for case_id, types in rows}
            overdue = (
                await conn.execute(
                    text("SELECT count(*) FROM dispatch.cases WHERE id = ANY(:ids) AND overdue"), {"ids": ids}
                )
            ).scalar_one()
            published = (
                await conn.execute(
                    text("SELECT count(*) FROM dispatch.outbox WHERE event_type IN ('case.overdue', 'case.escalated')")
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert sorted(flagged) == sorted(ids) and overdue == len(ids)
    assert per_case == {
        **{i: ["case.overdue"] for i in ids[:-1]},
        ids[-1]: ["case.overdue", "case.escalated"],
    }
    assert published == len(ids) + 1
    updates = [s for s in statements if s.startswith("UPDATE dispatch.cases")]
    assert updates and not any("explanation" in s for s in updates), updates  # the explanations stay as stored
    assert len(statements) < 10 < len(ids)  # a fixed few: not one or more per case
