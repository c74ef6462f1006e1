"""Where a consumer group is in each partition (消费位置), kept in PostgreSQL, and the log it read there.

The broker's commits may be forgotten (Tansu keeps them in memory) or made against a log the
broker lost, so the consumer runner records each partition's next offset, with the log epoch
and event id it applied last, in ``consumer_positions`` in the transaction that applied the
batch, and resumes from there when it is assigned the partition (see :mod:`shared.messaging.epochs`
for the epoch rule). This module is that bookkeeping: reading the positions back and seeking,
recording them on their own, and reading a partition again from its beginning when its log is
not the one the position was taken in. The runner decides *when* (after pausing the partitions
and waiting for the batch in hand, see :mod:`shared.messaging.consumer`).

消费组在各分区的位置记录在数据库中（与批次同一事务），分配时据此继续；日志不是记录位置时的那一个则从头重读。
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import UnitOfWork, is_database_unavailable
from shared.logging import get_logger
from shared.messaging.claims import BatchClaim, Position
from shared.messaging.epochs import EpochTracker

__all__ = ["GroupPositions"]

log = get_logger(__name__)


class GroupPositions:
    """One consumer group's positions and log epochs per partition. 一个消费组的各分区位置与纪元。"""

    def __init__(
        self, *, group_id: str, sessions: async_sessionmaker[AsyncSession], processed: Table, claim: BatchClaim
    ) -> None:
        self.group_id = group_id
        self.sessions = sessions
        self.table = processed.metadata.tables[f"{processed.schema}.consumer_positions"]
        self.claim = claim
        #: Per partition, the log epoch and event id of the last record applied.
        self.epochs = EpochTracker()
        self.rewinds = 0

    async def resume(self, consumer: AIOKafkaConsumer | None, assigned: set[TopicPartition]) -> None:
        """On assignment: continue each partition where this group's last applied record was, as
        PostgreSQL recorded it (the broker's commit may be gone, or made against a log it lost);
        the epoch and event id recorded with it let the first records read be checked (see
        :mod:`shared.messaging.epochs`). A recorded position beyond the partition's end is in a log
        the broker lost: the partition is read again from its beginning. Without a recorded position
        the broker's commit (or the earliest offset) stands. 分配时从数据库记录的位置继续，并据所记纪元
        核对所读日志；所记位置超出分区终点则从头重读。"""
        for tp in assigned:
            self.epochs.forget(tp)
        if not assigned or consumer is None:
            return
        t = self.table
        try:
            async with self.sessions() as session:
                rows = (await session.execute(
                    select(t.c.topic, t.c.partition, t.c.next_offset, t.c.epoch, t.c.last_event_id)
                    .where(t.c.consumer == self.group_id)
                )).all()
        except Exception as exc:  # cannot know where we were: read from the beginning (deduplicated)
            log.warning("consumer positions unreadable; reading from the beginning", consumer=self.group_id,
                        error=repr(exc))
            await consumer.seek_to_beginning(*assigned)
            return
        recorded: dict[TopicPartition, int] = {}
        for topic, partition, next_offset, epoch, last_event_id in rows:
            tp = TopicPartition(topic, partition)
            if tp in assigned:
                self.epochs.learn(tp, epoch, last_event_id)
                recorded[tp] = next_offset
                consumer.seek(tp, next_offset)  # at once: the fetcher must not start anywhere else
        ends: dict[TopicPartition, int] = {}
        if recorded:
            try:
                ends = await consumer.end_offsets(list(recorded))
            except Exception as exc:  # the fetch's epoch check still guards the position
                log.warning("end offsets unreadable", consumer=self.group_id, error=repr(exc))
        for tp, next_offset in recorded.items():
            end = ends.get(tp)
            if end is not None and next_offset > end:
                # A log never ends before a record it once held: this is a new, shorter log (a broker
                # that restarted empty), whose records at the position may never come — no epoch to
                # check would ever arrive. 日志终点早于所记位置：是更短的新日志，从头重读。
                self.epochs.forget(tp)
                await self.rewind(consumer, tp)

    def positions(self, *positions: tuple[TopicPartition, int]) -> list[Position]:
        """Where the group is in each partition (``(tp, next offset)``) and what it applied last there.
        各分区的消费位置及最后处理的事件。"""
        recorded = []
        for tp, next_offset in positions:
            epoch, last_event_id = self.epochs.last.get(tp, (None, None))
            recorded.append(Position(tp.topic, tp.partition, next_offset, epoch, last_event_id))
        return recorded

    async def save(self, *positions: tuple[TopicPartition, int]) -> None:
        """Record the positions on their own (after a batch applied one by one). 单独记录消费位置。"""
        recorded = self.positions(*positions)
        while True:
            try:
                async with UnitOfWork(self.sessions) as uow:
                    await self.claim.record(uow.session, positions=recorded)
                return
            except Exception as exc:
                if not is_database_unavailable(exc):
                    raise
                await asyncio.sleep(1.0)

    async def rewind(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        """The position points into a log it was not taken in: read the partition from its beginning."""
        log.warning(
            "partition's log is not the one the position was taken in; reading it again from the beginning",
            consumer=self.group_id, topic=tp.topic, partition=tp.partition,
        )
        self.rewinds += 1
        await consumer.seek_to_beginning(tp)
