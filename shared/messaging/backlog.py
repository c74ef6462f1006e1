"""The relay's backlog as a brake on bulk imports (批量导入的背压: 发件箱积压时暂缓).

A history import's consumer (dispatch's bulk lane) writes an outbox row per case faster than the
relay, sharing the process's event loop and two cores with it, gets them onto the broker: over a
300 k-report replay dispatch's bulk-lane outbox grew to 117 k rows unpublished, metrics (which
reads what the relay publishes) fell ever further behind and then worked alone on one core after
dispatch had finished. :class:`OutboxBacklog` lets a bulk batch start only while the lane's rows
not yet relayed are at most ``limit`` (two relay batches), so the import goes at the pace of the
whole pipeline and the next service's lag stays bounded. It asks the database (one index probe),
so it holds whichever replica relays the lane; it waits at most ``max_wait_s`` per batch, so a
relay that cannot publish (broker down) slows an import but never stops a consumer.

批量通道每个案件写一条发件箱行，速度快于同进程中继的发布：重放 30 万条时积压 11.7 万行未发布，
下游绩效服务越落越远。本模块让批量批次只在该通道未发布行不超过 ``limit`` 时开始，导入按整条
链路的速度推进、下游滞后有界；查询数据库（一次索引探测），与哪个副本在中继无关；每批最多等待
``max_wait_s``，中继无法发布时只会减慢导入而不会卡死消费者。
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.events import LANES
from shared.logging import get_logger

__all__ = ["BULK_BACKLOG_BATCHES", "OutboxBacklog"]

log = get_logger(__name__)

#: A bulk batch waits while the lane holds more than this many relay batches unpublished. 允许积压的中继批数。
BULK_BACKLOG_BATCHES: Final = 2


class OutboxBacklog:
    """Whether a lane's outbox rows are relayed (within ``limit``), and a wait until they are. 通道积压。"""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        schema: str,
        lane: str = "bulk",
        limit: int,
        poll_s: float = 0.05,
        max_wait_s: float = 10.0,
    ) -> None:
        self.engine = engine
        self.limit = limit
        self.poll_s = poll_s
        self.max_wait_s = max_wait_s
        #: Batches that waited for the relay, and batches that gave up waiting. 等待次数与放弃等待次数。
        self.waits = 0
        self.gave_up = 0
        self._behind = text(
            f'SELECT EXISTS (SELECT 1 FROM "{schema}".outbox_pending WHERE lane = {LANES.index(lane)} OFFSET :limit)'
        )

    async def behind(self) -> bool:
        """More than ``limit`` of the lane's rows wait for the relay. 未发布行超过上限。"""
        async with self.engine.connect() as conn:
            return bool((await conn.execute(self._behind, {"limit": self.limit})).scalar())

    async def wait_until_relayed(self) -> None:
        """Return once the lane's backlog is within ``limit`` (or ``max_wait_s`` passed). 等待积压回落。"""
        if not await self.behind():
            return
        self.waits += 1
        deadline = time.monotonic() + self.max_wait_s
        while time.monotonic() < deadline:
            await asyncio.sleep(self.poll_s)
            if not await self.behind():
                return
        self.gave_up += 1
        log.warning("outbox relay still behind; the bulk batch goes on", limit=self.limit, waited_s=self.max_wait_s)
