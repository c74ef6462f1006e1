"""The relay's backlog as a brake on bulk batches (shared.messaging.backlog), on a real database.

批量通道发件箱积压时暂缓批量批次。"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine
from shared.messaging.backlog import OutboxBacklog
from shared.messaging.priority import LivePriority

LIVE, BULK = 0, 1


async def _pend(engine: AsyncEngine, lane: int, ids: range) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO dispatch.outbox_pending (id, lane) SELECT unnest(CAST(:ids AS bigint[])), :lane"),
            {"ids": list(ids), "lane": lane},
        )


async def _relay(engine: AsyncEngine, ids: range) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM dispatch.outbox_pending WHERE id = ANY(CAST(:ids AS bigint[]))"), {"ids": list(ids)}
        )


async def test_behind_counts_only_the_lanes_rows_beyond_the_limit(own_database_url: str) -> None:
    engine = create_engine(own_database_url)
    backlog = OutboxBacklog(engine=engine, schema="dispatch", limit=3)
    try:
        assert not await backlog.behind()
        await _pend(engine, LIVE, range(1, 11))  # live rows are not the import's backlog
        await _pend(engine, BULK, range(11, 14))
        assert not await backlog.behind()  # three: at the limit
        await _pend(engine, BULK, range(14, 15))
        assert await backlog.behind()
        await _relay(engine, range(11, 12))
        assert not await backlog.behind()
    finally:
        await engine.dispose()


async def test_a_bulk_batch_starts_once_the_relay_has_caught_up(own_database_url: str) -> None:
    engine = create_engine(own_database_url)
    backlog = OutboxBacklog(engine=engine, schema="dispatch", limit=2, poll_s=0.02, max_wait_s=120)
    priority = LivePriority(backlog)
    try:
        await asyncio.wait_for(priority.before_bulk_batch(), 30)  # nothing pending: at once
        assert backlog.waits == 0
        await _pend(engine, BULK, range(1, 6))
        waiting = asyncio.create_task(priority.before_bulk_batch())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # five pending, limit two
        await _relay(engine, range(1, 3))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # three still pending
        await _relay(engine, range(3, 4))
        await asyncio.wait_for(waiting, 30)
        assert (backlog.waits, backlog.gave_up) == (1, 0)
    finally:
        await engine.dispose()


async def test_a_relay_that_cannot_publish_slows_the_import_but_never_stops_it(own_database_url: str) -> None:
    engine = create_engine(own_database_url)
    backlog = OutboxBacklog(engine=engine, schema="dispatch", limit=0, poll_s=0.02, max_wait_s=0.2)
    try:
        await _pend(engine, BULK, range(1, 2))
        await asyncio.wait_for(backlog.wait_until_relayed(), 30)
        assert (backlog.waits, backlog.gave_up) == (1, 1)
    finally:
        await engine.dispose()
