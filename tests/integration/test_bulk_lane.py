"""Intake's bulk lane (批量导入通道): a history import goes on its own topic and is dispatched like a
live report — counted exactly, routed the same, through a dispatch restart mid-import.

历史导入走独立主题，派遣结果与实时通道一致；导入中途重启派遣服务，逐一精确计数。
"""

from __future__ import annotations

import asyncio

import asyncpg

from shared.embedded import TansuBroker
from shared.events import CASE_EVENTS, CASE_EVENTS_BULK, INCIDENT_REPORTED, INCIDENT_REPORTED_BULK, decode_envelope
from tests.conftest import read_topic
from tests.processes import Platform, counts, new_tag, plain_dsn, post_many, wait_for_counts

BULK, LIVE = 300, 60


def exact(n: int) -> dict[str, int]:
    return {"cases": n, "incidents": n, "duplicate_timeline_rows": 0, "metrics_facts": n}


async def routed(database_url: str, tag: str) -> list[tuple[str, ...]]:
    """Each case of ``tag``: its ticket number (without the tag), township, unit, matter, state. (Not the
    deadline: both lanes take the dispatch time from the report, which intake stamps on receipt.)"""
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT source_id, township, unit, matter, state "
            "FROM dispatch.cases WHERE source_id LIKE $1 ORDER BY source_id",
            f"GD-{tag}-%",
        )
    finally:
        await conn.close()
    return [(r["source_id"].rsplit("-", 1)[1], r["township"], r["unit"], r["matter"], r["state"]) for r in rows]


async def published_events(database_url: str) -> dict[str, tuple[set[str], int]]:
    """Per lane: its cases' ids, and how many events their timelines published. 各通道案件及其事件数。"""
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT c.lane, array_agg(DISTINCT c.id::text) AS cases, count(t.event_id) AS events "
            "FROM dispatch.cases c JOIN dispatch.case_transitions t ON t.case_id = c.id GROUP BY c.lane"
        )
    finally:
        await conn.close()
    return {r["lane"]: (set(r["cases"]), r["events"]) for r in rows}


async def test_a_bulk_import_is_dispatched_exactly_once_and_routed_as_live(
    own_database_url: str, module_broker: TansuBroker
) -> None:
    platform = Platform(own_database_url, module_broker.bootstrap, label="bulk-lane")
    bulk_tag, live_tag = new_tag(), new_tag()

    async def restart_dispatch() -> None:
        platform.kill("dispatch")
        platform.start("dispatch")

    try:
        platform.start()
        await platform.wait_healthy()
        await platform.load_demo_county()
        steps: list[object] = [None, None, restart_dispatch]
        bulk, live = await asyncio.gather(
            post_many(platform.url("intake"), bulk_tag, BULK, lane="bulk", while_posting=steps),
            post_many(platform.url("intake"), live_tag, LIVE, batch=10),
        )
        assert (len(bulk), len(live)) == (BULK, LIVE)
        assert await wait_for_counts(own_database_url, bulk_tag, BULK, timeout_s=180) == exact(BULK)
        assert await wait_for_counts(own_database_url, live_tag, LIVE, timeout_s=180) == exact(LIVE)

        # The import went on its own topic; the live reports on theirs.
        on_bulk = {str(decode_envelope(r.value).id) for r in
                   await read_topic(module_broker.bootstrap, INCIDENT_REPORTED_BULK, expect=BULK)}
        on_live = {str(decode_envelope(r.value).id) for r in
                   await read_topic(module_broker.bootstrap, INCIDENT_REPORTED, expect=LIVE)}
        assert bulk <= on_bulk and not bulk & on_live and live <= on_live

        # Ticket n routes the same whichever lane it came in (the first LIVE of the import).
        imported = await routed(own_database_url, bulk_tag)
        assert imported[:LIVE] == await routed(own_database_url, live_tag)
        assert len(imported) == BULK

        # Each case keeps its lane, and every event of an imported case went on case.events.bulk,
        # every event of a live one on case.events (exactly: one more record is never there).
        published = await published_events(own_database_url)
        assert set(published) == {"bulk", "live"}
        for lane, topic in (("bulk", CASE_EVENTS_BULK), ("live", CASE_EVENTS)):
            cases, events = published[lane]
            records = await read_topic(module_broker.bootstrap, topic, expect=events + 1, timeout_s=5)
            assert len(records) == events
            assert {decode_envelope(r.value).subject for r in records} == cases
    finally:
        platform.stop()


async def test_a_history_import_scored_by_a_metrics_process_of_its_own(
    own_database_url: str, module_broker: TansuBroker
) -> None:
    """The platform's metrics scores the live lane only (``METRICS_CASE_LANES=live``); the import's cases
    wait for a metrics of their own (``bulk``), which joins the same consumer group and scores every one
    of them exactly once. 平台绩效只计实时通道；导入案件由其专属绩效进程（同一消费组）逐一计分。"""
    platform = Platform(
        own_database_url, module_broker.bootstrap, label="metrics-lanes", env_extra={"METRICS_CASE_LANES": "live"}
    )
    bulk_tag, live_tag = new_tag(), new_tag()
    try:
        platform.start()
        await platform.wait_healthy()
        await platform.load_demo_county()
        bulk, live = await asyncio.gather(
            post_many(platform.url("intake"), bulk_tag, BULK, lane="bulk"),
            post_many(platform.url("intake"), live_tag, LIVE, batch=10),
        )
        assert (len(bulk), len(live)) == (BULK, LIVE)
        assert await wait_for_counts(own_database_url, live_tag, LIVE, timeout_s=180) == exact(LIVE)
        imported = await counts(own_database_url, bulk_tag)
        for _ in range(360):  # every imported case dispatched (their events on case.events.bulk), none scored
            if imported["cases"] >= BULK:
                break
            await asyncio.sleep(0.5)
            imported = await counts(own_database_url, bulk_tag)
        assert (imported["cases"], imported["metrics_facts"]) == (BULK, 0)

        platform.start_replica("metrics-import", "metrics", METRICS_CASE_LANES="bulk")
        await platform.wait_healthy("metrics-import")
        assert await wait_for_counts(own_database_url, bulk_tag, BULK, timeout_s=180) == exact(BULK)
        assert await wait_for_counts(own_database_url, live_tag, LIVE, timeout_s=5) == exact(LIVE)
    finally:
        platform.stop()
