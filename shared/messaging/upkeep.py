"""Vacuuming the relay's queue tables (队列表清理), whatever the server's autovacuum does.

``outbox_pending`` is a queue: each row is inserted by a use case's transaction, claimed by the
relay moments later and deleted; ``outbox_published`` is filled by the relay and emptied by
retention. Every claim (``lane = L ORDER BY id LIMIT n``) and the bulk backlog probe
(:mod:`shared.messaging.backlog`) walk the ``(lane, id)`` index from the lane's first entry, and
the entries of deleted rows stay there until a ``VACUUM`` removes them: new ids go to the index's
right-hand end, so no page split ever cleans the pages on the left. On a server that does not
autovacuum (this machine's PostgreSQL runs with ``autovacuum = off``), a 2 M-report replay left
intake's claim reading through the entries of every report ever relayed — 13.7 ms a claim,
1,135 s of PostgreSQL over the run, growing with the import — and the bulk backlog probe 55 ms.
Like PgQ's ``pgqd``, which vacuums its queue tables itself, the relay's :class:`QueueUpkeep`
vacuums its two queue tables every ``interval_s``: a queue that is drained costs milliseconds to
vacuum. ``outbox_pending`` is analysed too, and the fresh statistics re-plan the cached claims (the
relay's statements no longer depend on them: a vacuum of an empty queue records it as empty, and a
plan made then must still read by key once it is full — see
:data:`shared.messaging.outbox_tables.KEYED_READS`); ``outbox_published`` is not: its rows carry
arrays of up to a batch's ids, and analysing them (element statistics of a 30,000-row sample) took 0.75 s a pass
while an import's consumers lagged.
With autovacuum on (production) the upkeep is redundant and as cheap.

发件箱待发表是队列：行写入后片刻即被认领、删除；已删行的索引项直到 VACUUM 才移除，而新行号总在索引
右端，页分裂不会清理左侧。服务器未开启 autovacuum 时，200 万条重放中接入服务每次认领要读过历史上
全部已删索引项（每次 13.7 ms）。本模块像 PgQ 的 pgqd 一样定期自行清理队列表（VACUUM，
跳过已锁表）；待发表同时更新统计，让缓存的认领计划重新规划（已发布表含行号数组，不做统计）。
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import driver_connection
from shared.logging import get_logger

__all__ = ["KEEP_PAGES", "QUEUE_TABLES", "QueueUpkeep"]

log = get_logger(__name__)

#: The relay's queue tables, in each service's schema, and how each is vacuumed: the pending queue
#: with fresh statistics for the claim. 中继的队列表及各自的清理方式。
QUEUE_TABLES: Final = {"outbox_pending": "VACUUM (ANALYZE, SKIP_LOCKED)", "outbox_published": "VACUUM (SKIP_LOCKED)"}


#: Storage parameters of the tables every transaction of a lane writes to (the outbox and its queues, the
#: consumers' positions): a ``VACUUM`` (autovacuum's or the upkeep's) does not hand their empty trailing
#: pages back to the system. To hand them back it takes the table's ACCESS EXCLUSIVE lock, and while it
#: truncates (dropping the pages from shared buffers, then the file), every insert, claim and position
#: write of every lane waits: in two 300 k replays with autovacuum on, each relation-lock wait sampled
#: (23, every one a claim or an insert into an outbox) fell while a vacuum truncated an outbox or a
#: pending queue (a few such stalls a run: the live p99 did not move beyond the runs' spread). These
#: tables empty and fill again all day: the pages kept are the pages the next hour reuses. Also
#: spares autovacuum the 5 s it spends trying for that lock on ``consumer_positions``, which is never
#: free. Their TOAST tables too: an event over ~2 KB (a case event with its explanation) is stored out of
#: line, and dispatch's outbox's TOAST table drains and fills as the outbox does.
#: 队列表与消费位置表（及其 TOAST 表）不截断空页：截断需持排他锁，期间所有通道的写入与认领都要等待。
KEEP_PAGES: Final = {"vacuum_truncate": "false", "toast.vacuum_truncate": "false"}


class QueueUpkeep:
    """Vacuum one schema's queue tables now (:meth:`vacuum_once`) or every ``interval_s`` (:meth:`run`).

    定期清理一个服务的队列表。``VACUUM`` 不能在事务内执行：在自动提交的驱动连接上执行；
    ``SKIP_LOCKED``：另一副本正在清理时跳过，不排队等待。
    """

    def __init__(self, *, engine: AsyncEngine, schema: str, interval_s: float = 30.0) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.passes = 0
        self._vacuum_sql = [f'{vacuum} "{schema}".{table}' for table, vacuum in QUEUE_TABLES.items()]

    async def vacuum_once(self) -> None:
        """One ``VACUUM`` of each queue table. 清理一次。"""
        async with driver_connection(self.engine) as conn:
            for statement in self._vacuum_sql:
                await conn.execute(statement)
        self.passes += 1

    async def run(self, stopping: asyncio.Event) -> None:
        """Vacuum every ``interval_s`` until ``stopping`` is set; a failed pass is logged and retried
        at the next interval (it never stops the relay). 定期清理；失败只记录，下次再试。"""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.interval_s)
            if stopping.is_set():
                return
            try:
                await self.vacuum_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("queue tables not vacuumed; trying again later", error=f"{type(exc).__name__}: {exc}")
