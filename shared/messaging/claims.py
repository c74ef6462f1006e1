"""A batch's bookkeeping statement (批次登记语句): where the group now is, and which events are new.

Every transaction the consumer runner applies opens with it (see :mod:`shared.messaging.consumer`):

* the group's position in each partition of the batch (``consumer_positions``: next offset, and the
  log epoch and event id applied last, see :mod:`shared.messaging.epochs`), upserted in one order
  (topic, partition) for every writer, so two transactions never wait for each other in a cycle;
* the idempotency claim: the batch's event ids inserted into ``processed_messages``; those that
  were not there yet come back (the events to apply), the others were applied before.

Both in one statement (a data-modifying ``WITH``), because on a busy machine each round trip to
the database costs a scheduling wait on both sides, more than the statement itself: a live batch's
transaction was nine round trips, this makes it one fewer. The statement text is the same for any
number of partitions and events (arrays unnested server-side), so it is prepared once per
connection. 位置与去重登记合为一条语句（少一次往返）；语句文本与行数无关，每个连接只准备一次。
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["BatchClaim", "Position"]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a group is in one partition: the next offset to read, and what it applied last there.

    消费组在一个分区的位置：下一个偏移量，以及最后处理记录的纪元与事件 id。"""

    topic: str
    partition: int
    next_offset: int
    epoch: str | None = None
    last_event_id: str | None = None


def _statement(positions: Table, processed: Table) -> TextClause:
    return text(
        f"WITH positioned AS ("
        f"INSERT INTO {positions.fullname} (consumer, topic, partition, next_offset, epoch, last_event_id) "
        f"SELECT :consumer, u.topic, u.partition, u.next_offset, u.epoch, u.last_event_id "
        f"FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS integer[]), CAST(:offsets AS bigint[]), "
        f"CAST(:epochs AS text[]), CAST(:last_event_ids AS text[])) WITH ORDINALITY "
        f"AS u(topic, partition, next_offset, epoch, last_event_id, ord) ORDER BY u.ord "
        f"ON CONFLICT (consumer, topic, partition) DO UPDATE SET next_offset = excluded.next_offset, "
        f"epoch = excluded.epoch, last_event_id = excluded.last_event_id, updated_at = now() "
        f"RETURNING 1) "
        f"INSERT INTO {processed.fullname} (consumer, event_id) "
        f"SELECT :consumer, u.event_id FROM unnest(CAST(:event_ids AS uuid[])) WITH ORDINALITY AS u(event_id, ord) "
        f"ORDER BY u.ord ON CONFLICT DO NOTHING RETURNING event_id"
    )


class BatchClaim:
    """The bookkeeping statement of one consumer group (``group_id``) over a service's
    ``processed_messages`` table and the ``consumer_positions`` table beside it.

    一个消费组的批次登记语句。"""

    __slots__ = ("group_id", "statement")

    def __init__(self, *, group_id: str, processed: Table) -> None:
        self.group_id = group_id
        positions = processed.metadata.tables[f"{processed.schema}.consumer_positions"]
        self.statement = _statement(positions, processed)

    def params(self, *, positions: Sequence[Position], event_ids: Sequence[Any]) -> dict[str, Any]:
        """The statement's parameters: ``positions`` in one global order (no deadlock between two writers),
        each event id once (the first occurrence; a repeat inside a batch is a duplicate of it).
        参数：位置按全局统一顺序排列（两个写者之间不会死锁），事件 id 去重。"""
        ordered = sorted(positions, key=lambda p: (p.topic, p.partition))
        return {
            "consumer": self.group_id,
            "topics": [p.topic for p in ordered],
            "partitions": [p.partition for p in ordered],
            "offsets": [p.next_offset for p in ordered],
            "epochs": [p.epoch for p in ordered],
            "last_event_ids": [p.last_event_id for p in ordered],
            "event_ids": list(dict.fromkeys(event_ids)),
        }

    async def record(
        self, session: AsyncSession, *, positions: Sequence[Position] = (), event_ids: Sequence[Any] = ()
    ) -> set[Any]:
        """Record ``positions`` and claim ``event_ids`` in the caller's transaction; the ids not
        claimed before (the events to apply). 在调用方事务中记录位置并登记事件；返回此前未处理的 id。"""
        result = await session.execute(self.statement, self.params(positions=positions, event_ids=event_ids))
        return set(result.scalars().all())
