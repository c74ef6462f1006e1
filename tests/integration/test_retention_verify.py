"""The retention keeper reads the broker back (shared.messaging.retention), on a real Tansu broker.

One pass reads every retained partition at once and judges each on its own: a record still there,
a different record there, a partition left empty by a broker that forgot it.
留存核对：一轮同时回读全部分区，逐个判定。"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine
from shared.embedded import TansuBroker
from shared.events import INCIDENT_REPORTED
from shared.messaging.epochs import EVENT_ID_HEADER
from shared.messaging.retention import Retained, RetentionKeeper
from shared.messaging.topics import ensure_topics


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _produce(bootstrap: str, records: list[tuple[int, str]]) -> None:
    """``(partition, event id)`` records, in order. 按序写入（分区，事件 id）。"""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, event_id in records:
            await producer.send_and_wait(
                INCIDENT_REPORTED, value=b"{}", partition=partition, headers=[(EVENT_ID_HEADER, event_id.encode())]
            )
    finally:
        await producer.stop()


def _retained(partition: int, last_offset: int, event_id: str) -> Retained:
    return Retained(INCIDENT_REPORTED, partition, "epoch-1", last_offset, event_id, 60.0)


async def test_one_pass_reads_every_partition_and_judges_each_on_its_own(
    own_broker: TansuBroker, engine: AsyncEngine
) -> None:
    await ensure_topics(own_broker.bootstrap, [INCIDENT_REPORTED])
    await _produce(own_broker.bootstrap, [(0, "a0"), (0, "a1"), (0, "a2"), (1, "b0")])
    keeper = RetentionKeeper(
        engine=engine, schema="intake", bootstrap=own_broker.bootstrap, retention_s=60.0, fetch_timeout_s=3.0
    )
    retained = [
        _retained(0, 1, "a1"),  # still there, with a newer record after it 仍在（其后另有记录）
        _retained(1, 0, "other"),  # another record at that offset 该偏移处是另一条记录
        _retained(2, 0, "c0"),  # the broker kept nothing of this partition 该分区已无记录
        _retained(3, 4, "d4"),
    ]
    try:
        first = await keeper.verify(retained)
        second = await keeper.verify(retained)
    finally:
        await keeper.close()
    topic = INCIDENT_REPORTED
    assert first[topic, 0] == "intact"
    assert first[topic, 1] == "lost"
    # An empty partition answers nothing at all, or "out of range": once proves nothing, twice does.
    # 空分区：一次读不到不作判断，两次才判为丢失。
    assert first[topic, 2] in ("unknown", "lost") and first[topic, 3] in ("unknown", "lost")
    assert second == {(topic, 0): "intact", (topic, 1): "lost", (topic, 2): "lost", (topic, 3): "lost"}
    assert keeper.findings[topic, 0] == "found a1 at 1"
    assert keeper.findings[topic, 1] == "found b0 at 0"
