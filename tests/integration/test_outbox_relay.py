"""Outbox relays of several replicas: everything published once, a key's events in written order.

多副本发件箱中继：每条事件都发布，且同键事件按写入顺序到达 Kafka。
"""

from __future__ import annotations

import uuid

import orjson
from sqlalchemy import text

from shared.db import create_engine, service_metadata
from shared.embedded import TansuBroker
from shared.messaging.outbox import OutboxRelay, outbox_tables
from shared.messaging.publisher import KafkaPublisher
from shared.messaging.topics import ensure_topics
from tests.conftest import read_topic
from tests.helpers import eventually

KEYS = 7
ROWS = 1400


async def test_two_replicas_relaying_keep_each_keys_order(own_database_url: str, kafka: TansuBroker) -> None:
    topic = f"test.relay.order.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka.bootstrap, [topic])
    metadata = service_metadata("relaytest")
    table = outbox_tables(metadata)
    engine = create_engine(own_database_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE SCHEMA relaytest"))
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            table.insert(),
            [
                {
                    "event_id": uuid.uuid4(),
                    "topic": topic,
                    "event_type": "test.written",
                    "key": f"case-{i % KEYS}",
                    "value": orjson.dumps({"key": f"case-{i % KEYS}", "n": i // KEYS}),
                    "headers": [["ce_type", "test.written"]],
                }
                for i in range(ROWS)
            ],
        )
        await conn.execute(text("INSERT INTO relaytest.outbox_pending (id) SELECT id FROM relaytest.outbox"))
    replicas = [
        OutboxRelay(
            engine=create_engine(own_database_url),
            table=table,
            publisher=KafkaPublisher(bootstrap=kafka.bootstrap, client_id=f"relay-{r}"),
            batch_size=50,
            poll_interval_s=0.01,
            linger_s=0.0,
        )
        for r in range(2)
    ]
    for relay in replicas:
        relay.start()
        relay.wake()

    async def all_sent() -> bool:
        async with engine.connect() as conn:
            unsent = await conn.scalar(text("SELECT count(*) FROM relaytest.outbox_pending"))
        return unsent == 0

    try:
        await eventually(all_sent, timeout_s=120)
    finally:
        for relay in replicas:
            await relay.stop()
            await relay.publisher.stop()
            await relay.engine.dispose()
        await engine.dispose()

    assert sum(relay.published for relay in replicas) == ROWS
    records = await read_topic(kafka.bootstrap, topic, expect=ROWS, timeout_s=90)
    seen: dict[str, list[int]] = {}
    for record in records:
        body = orjson.loads(record.value)
        assert record.key.decode() == body["key"]
        seen.setdefault(body["key"], []).append(body["n"])
    assert seen == {f"case-{k}": list(range(ROWS // KEYS)) for k in range(KEYS)}
