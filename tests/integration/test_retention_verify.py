"""The retention keeper reads the broker back (shared.messaging.retention), on a real Tansu broker.

One pass reads every retained partition at once and judges each on its own: a record still there,
a different record there, a partition left empty by a broker that forgot it.
留存核对：一轮同时回读全部分区，逐个判定。"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine, driver_connection, service_metadata
from shared.embedded import TansuBroker
from shared.events import INCIDENT_REPORTED
from shared.messaging.epochs import EVENT_ID_HEADER
from shared.messaging.outbox_tables import outbox_tables
from shared.messaging.retention import Retained, RetentionKeeper
from shared.messaging.topics import ensure_topics
from tests.helpers import plan_reads_of


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


async def test_the_retained_records_are_found_with_one_lookup_per_partition(own_database_url: str) -> None:
    """However many batches wait for a lagging consumer, the keeper's pass finds each partition's newest
    record and its last row with one outbox lookup per partition (not one per retained batch).
    无论为滞后的消费者保留了多少批次，每个分区只查一次发件箱即得最新记录及其末行。"""
    schema = f"keepplan{uuid.uuid4().hex[:6]}"
    metadata = service_metadata(schema)
    outbox_tables(metadata)
    engine = create_engine(own_database_url)
    keeper = RetentionKeeper(engine=engine, schema=schema, bootstrap="127.0.0.1:9", retention_s=60.0)
    partitions, batches = 3, 200
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
            await conn.run_sync(metadata.create_all)
        async with driver_connection(engine) as conn:
            await conn.execute(
                f"INSERT INTO {schema}.outbox (event_id, topic, event_type, key, value, headers) "
                "SELECT gen_random_uuid(), 'test.keep', 'test.written', g::text, '\\x00', '[]'::jsonb "
                f"FROM generate_series(1, {partitions * batches}) g"
            )
            # Batch b of partition p: offset b, the row with id p * batches + b + 1. 第 p 分区第 b 批。
            await conn.execute(
                f"INSERT INTO {schema}.outbox_published (topic, partition, first_offset, last_offset, outbox_ids) "
                f"SELECT 'test.keep', p, b, b, ARRAY[p * {batches} + b + 1] "
                f"FROM generate_series(0, {partitions - 1}) p, generate_series(0, {batches - 1}) b"
            )
            await conn.execute(
                f"INSERT INTO {schema}.outbox_partitions (topic, partition, epoch, last_offset) "
                f"SELECT 'test.keep', p, 'e' || p, {batches - 1} FROM generate_series(0, {partitions - 1}) p"
            )
            explained = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {keeper.retained_sql}")
            found = await conn.fetch(keeper.retained_sql)
            expected = await conn.fetch(
                f"SELECT event_id::text FROM {schema}.outbox WHERE id IN "
                f"(SELECT p * {batches} + {batches} FROM generate_series(0, {partitions - 1}) p) ORDER BY id"
            )
    finally:
        await engine.dispose()
    [plan] = orjson.loads(explained) if isinstance(explained, str) else explained  # the pool decodes JSON

    assert [(r["partition"], r["last_offset"], r["epoch"]) for r in found] == [
        (p, batches - 1, f"e{p}") for p in range(partitions)
    ]
    assert [r["event_id"] for r in found] == [r["event_id"] for r in expected]
    assert sum(s["Actual Rows"] * s["Actual Loops"] for s in plan_reads_of(plan["Plan"], "outbox")) == partitions
