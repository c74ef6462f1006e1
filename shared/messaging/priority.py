"""Live before bulk (实时优先于批量导入): the gate a bulk consumer waits at while live work is in hand.

A county importing its history (历史导入) posts to intake's bulk lane, which publishes to its own
topic (``incident.reported.bulk``), so a live report never queues behind a year of imports in a
partition. The two lanes are consumed by two consumer groups in the same process, and they share
one event loop, one connection pool and two cores: left alone, the bulk consumer would keep
every core busy and the dispatcher's live report would wait for CPU. :class:`LivePriority` keeps
the bulk consumer from *starting* a batch while a live batch is being applied; the bulk batch
already in flight goes on (it yields at every await, see ``shared.cooperative``), so a live
report waits at most for the slices of one bulk batch, never for the backlog.

Inside one process asyncio has no priorities: the live batch still shares the event loop with the
bulk batch in flight. For a large import, an operator runs the bulk lane in processes of their own
(dispatch with ``DISPATCH_INCIDENT_LANES=bulk``, the live ones with ``live``) started at a lower
CPU priority (``nice``), and the operating system keeps the live processes first.

批量导入走自己的主题，实时事件不会在分区里排在一年的历史数据之后；两个消费组同在一个进程内，
共享事件循环、连接池和两个 CPU 核。实时批次处理期间，批量消费者不开始新批次（已在处理的批次
照常在每个 await 处让出），实时事件最多等待一个批量批次的切片，而不是整个积压。大批量导入时，
可把批量通道放到单独的低优先级（nice）进程中，由操作系统保证实时进程优先。
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from shared.messaging.backlog import OutboxBacklog


class LivePriority:
    """Counts live batches in hand; bulk batches start only when there are none. 实时批次计数与批量闸门。"""

    def __init__(self, backlog: OutboxBacklog | None = None) -> None:
        #: The bulk lane's outbox backlog a bulk batch also waits for (:mod:`shared.messaging.backlog`).
        #: 批量批次还需等待的批量通道发件箱积压。
        self.backlog = backlog
        self._live = 0
        self._idle = asyncio.Event()
        self._idle.set()
        #: How many times a bulk batch waited for live work (for telemetry and the bench). 批量等待次数。
        self.bulk_waits = 0

    @property
    def live_in_hand(self) -> int:
        """Live batches being applied now. 正在处理的实时批次数。"""
        return self._live

    @contextlib.asynccontextmanager
    async def live_batch(self) -> AsyncIterator[None]:
        """Mark a live batch in hand for the duration of the block. 标记实时批次处理中。"""
        self._live += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._live -= 1
            if self._live == 0:
                self._idle.set()

    async def before_bulk_batch(self) -> None:
        """Wait until no live batch is in hand (returns at once when none is), and until the bulk lane's
        outbox is relayed within its limit when a backlog is set. 等待实时批次处理完毕及批量积压回落。"""
        if self._live:
            self.bulk_waits += 1
        await self._idle.wait()
        if self.backlog is not None:
            await self.backlog.wait_until_relayed()
