"""The shared consumer runner against real Tansu and PostgreSQL: commits after the
transaction, dedup of redelivered events, DLQ for poison messages, restart and rebalance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import Column, Integer, Table, Text, Uuid, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import UnitOfWork, create_engine, service_metadata, session_factory
from shared.embedded import TansuBroker
from shared.events import (
    INCIDENT_REPORTED,
    INCIDENT_REPORTED_BULK,
    JURISDICTION_CHANGED,
    EventEnvelope,
    JurisdictionChanged,
    dlq_topic,
    make_envelope,
)
from shared.messaging.consumer import ConsumerRunner
from shared.messaging.priority import LivePriority
from shared.messaging.publisher import KafkaPublisher
from shared.messaging.tables import processed_messages_table
from shared.messaging.topics import ensure_topics
from tests.conftest import read_topic
from tests.helpers import eventually

metadata = service_metadata("runner_test")
applied = Table(
    "applied", metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("county", Text, nullable=False),
    Column("version", Integer, nullable=False),
)
processed = processed_messages_table(metadata)


@pytest.fixture
async def engine(own_database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(own_database_url)
    async with eng.begin() as conn:
        await conn.execute(text("CREATE SCHEMA IF NOT EXISTS runner_test"))
        await conn.run_sync(metadata.create_all)
    yield eng
    await eng.dispose()


def envelope(county: str, version: int) -> EventEnvelope[Any]:
    data = JurisdictionChanged(county_code=county, version=version, rules_version=1, digest="d", change="bundle")
    return make_envelope(event_type="jurisdiction.changed", data=data, source="/test", correlation_id="c",
                         subject=county, time=datetime.now(UTC))


async def produce(bootstrap: str, values: list[tuple[str, bytes]]) -> None:
    await ensure_topics(bootstrap, [JURISDICTION_CHANGED])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(JURISDICTION_CHANGED, key=key.encode(), value=value)
    finally:
        await producer.stop()


class Recorder:
    """Handler that applies an event and optionally fails on a poison county. Each call registers an
    after-commit callback first: ``committed`` lists the events whose transaction committed."""

    def __init__(self, poison: str | None = None, delay_s: float = 0.0) -> None:
        self.poison = poison
        self.delay_s = delay_s
        self.calls = 0
        self.committed: list[Any] = []

    async def __call__(self, uow: UnitOfWork, env: EventEnvelope[Any]) -> None:
        self.calls += 1
        uow.after_commit(lambda: self.committed.append(env.id))
        session = uow.session
        if env.data.county_code == self.poison:
            raise RuntimeError("this county breaks the handler")
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        await session.execute(applied.insert().values(event_id=env.id, county=env.data.county_code,
                                                      version=env.data.version))


def runner(engine: AsyncEngine, broker: TansuBroker, handler: Recorder, group: str,
           publisher: KafkaPublisher) -> ConsumerRunner:
    return ConsumerRunner(group_id=group, topics=[JURISDICTION_CHANGED], bootstrap=broker.bootstrap,
                          sessions=session_factory(engine), processed=processed, handler=handler,
                          publisher=publisher, max_batch=7, max_attempts=2)


async def count_applied(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(applied))).scalar_one())


async def test_poison_messages_go_to_dlq_and_consumption_goes_on(engine: AsyncEngine,
                                                                  own_broker: TansuBroker) -> None:
    good = [envelope(f"33{i:04d}", i) for i in range(10)]
    bad = envelope("POISON", 99)
    values = [(e.subject or "", e.to_bytes()) for e in good[:5]]
    values += [("x", b"not json at all"), (bad.subject or "", bad.to_bytes())]
    values += [(e.subject or "", e.to_bytes()) for e in good[5:]]
    await produce(own_broker.bootstrap, values)
    publisher = KafkaPublisher(bootstrap=own_broker.bootstrap, client_id="t")
    handler = Recorder(poison="POISON")
    r = runner(engine, own_broker, handler, "g-dlq", publisher)
    r.start()
    try:
        await eventually(lambda: _eq(count_applied(engine), 10), timeout_s=30)
        dead = await read_topic(own_broker.bootstrap, dlq_topic(JURISDICTION_CHANGED), expect=2)
        reasons = sorted(dict(d.headers)["dlq_reason"].decode() for d in dead)
        assert reasons[0].startswith("contract: not JSON")
        assert reasons[1].startswith("handler failed 2×: RuntimeError")
        assert {dict(d.headers)["dlq_original_topic"] for d in dead} == {JURISDICTION_CHANGED.encode()}
        assert b"not json at all" in {d.value for d in dead}
        assert dict(dead[0].headers).get("ce_type") in (None, b"jurisdiction.changed")
        # After-commit callbacks ran once per committed event: never for the poison event's
        # rolled-back attempts, nor for the batch that failed before the one-by-one retry.
        # 提交后回调只对已提交的事件各执行一次：毒消息的回滚尝试与失败的整批均不执行。
        assert sorted(map(str, handler.committed)) == sorted(str(e.id) for e in good)
    finally:
        await r.stop()
        await publisher.stop()


async def _eq(value: Any, expected: Any) -> bool:
    return (await value) == expected


async def test_restart_resumes_from_committed_offset_without_loss_or_double_apply(
        engine: AsyncEngine, own_broker: TansuBroker) -> None:
    events = [envelope(f"34{i:04d}", i) for i in range(40)]
    await produce(own_broker.bootstrap, [(e.subject or "", e.to_bytes()) for e in events[:20]])
    publisher = KafkaPublisher(bootstrap=own_broker.bootstrap, client_id="t")
    first = Recorder()
    r1 = runner(engine, own_broker, first, "g-restart", publisher)
    r1.start()
    await eventually(lambda: _eq(count_applied(engine), 20), timeout_s=30)
    await r1.stop()
    # Redeliver what was already applied (as a crash before the commit would) plus new events.
    await produce(own_broker.bootstrap, [(e.subject or "", e.to_bytes()) for e in events[:5]])
    await produce(own_broker.bootstrap, [(e.subject or "", e.to_bytes()) for e in events[20:]])
    second = Recorder()
    r2 = runner(engine, own_broker, second, "g-restart", publisher)
    r2.start()
    try:
        # The group's rejoin waits out the old member's session (10 s), longer on a busy machine.
        await eventually(lambda: _eq(count_applied(engine), 40), timeout_s=90)
        await asyncio.sleep(1.0)
        assert await count_applied(engine) == 40
        # The restarted consumer started after the committed offset: it never re-read the first 20;
        # the 5 redelivered events were recognised by their ids and not applied again.
        assert (r2.applied, r2.duplicates, second.calls) == (20, 5, 20)
    finally:
        await r2.stop()
        await publisher.stop()


async def _waiting_for_a_lock(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        waiting = (await conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND query ILIKE '%consumer_positions%'"
        ))).scalar_one()
    return int(waiting) > 0


async def test_partitions_taken_over_are_read_from_the_recorded_positions_only(
        engine: AsyncEngine, own_broker: TansuBroker) -> None:
    """A consumer taking partitions over reads nothing before PostgreSQL told it where the group is:
    not even when the broker forgot the group's commits (its fetcher would start at the earliest
    offset) and PostgreSQL is slow to answer (a lock on the positions). 接管分区时，位置读回之前不读任何记录。"""
    events = [envelope(f"36{i:04d}", i) for i in range(40)]
    values = [(e.subject or "", e.to_bytes()) for e in events]
    await produce(own_broker.bootstrap, values[:20])
    publisher = KafkaPublisher(bootstrap=own_broker.bootstrap, client_id="t")
    r1 = runner(engine, own_broker, Recorder(), "g-takeover", publisher)
    r1.start()
    await eventually(lambda: _eq(count_applied(engine), 20), timeout_s=30)
    await r1.stop()
    await publisher.stop()
    # The broker restarts empty (commits gone) and gets the same log again: same keys, same order,
    # so the same partitions and offsets, and the positions PostgreSQL recorded are right for it.
    own_broker.restart()
    await produce(own_broker.bootstrap, values[:20])
    publisher = KafkaPublisher(bootstrap=own_broker.bootstrap, client_id="t")
    second = Recorder()
    r2 = runner(engine, own_broker, second, "g-takeover", publisher)
    try:
        async with engine.connect() as blocker:
            await blocker.execute(text("LOCK TABLE runner_test.consumer_positions IN ACCESS EXCLUSIVE MODE"))
            r2.start()
            await eventually(lambda: _waiting_for_a_lock(engine), timeout_s=60)
            await asyncio.sleep(2.0)  # time enough for a fetcher that did not wait to read from offset 0
            await blocker.rollback()
        await produce(own_broker.bootstrap, values[20:])
        await eventually(lambda: _eq(count_applied(engine), 40), timeout_s=60)
        await asyncio.sleep(1.0)
        assert await count_applied(engine) == 40
        assert (r2.applied, r2.duplicates, second.calls) == (20, 0, 20)
    finally:
        await r2.stop()
        await publisher.stop()


async def test_rebalance_between_two_consumers_applies_each_event_once(
        engine: AsyncEngine, own_broker: TansuBroker) -> None:
    await ensure_topics(own_broker.bootstrap, [JURISDICTION_CHANGED])
    events = [envelope(f"35{i:04d}", i) for i in range(120)]
    publisher = KafkaPublisher(bootstrap=own_broker.bootstrap, client_id="t")
    a = runner(engine, own_broker, Recorder(delay_s=0.01), "g-rebalance", publisher)
    a.start()
    await produce(own_broker.bootstrap, [(e.subject or "", e.to_bytes()) for e in events[:60]])
    b = runner(engine, own_broker, Recorder(delay_s=0.01), "g-rebalance", publisher)
    b.start()  # joins mid-stream: partitions move while work is in flight
    await produce(own_broker.bootstrap, [(e.subject or "", e.to_bytes()) for e in events[60:]])
    try:
        await eventually(lambda: _eq(count_applied(engine), 120), timeout_s=60)
        await asyncio.sleep(1.0)
        assert await count_applied(engine) == 120
        async with engine.connect() as conn:
            keys = (await conn.execute(select(func.count()).select_from(processed))).scalar_one()
        assert keys == 120
    finally:
        await a.stop()
        await b.stop()
        await publisher.stop()


class BatchRecorder:
    """Batch handler: applies a whole batch with one statement; a poison county breaks the batch."""

    def __init__(self, poison: str | None = None, delay_s: float = 0.0) -> None:
        self.poison = poison
        self.delay_s = delay_s
        self.sizes: list[int] = []

    async def __call__(self, uow: UnitOfWork, envs: list[EventEnvelope[Any]]) -> None:
        session = uow.session
        self.sizes.append(len(envs))
        if any(env.data.county_code == self.poison for env in envs):
            raise RuntimeError("this county breaks the batch")
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        await session.execute(
            applied.insert(),
            [{"event_id": e.id, "county": e.data.county_code, "version": e.data.version} for e in envs],
        )


@pytest.mark.parametrize("mode", ["concurrent_partitions", "partitions_together"])
async def test_batch_handler_isolates_a_poison_event_across_partitions(
        engine: AsyncEngine, own_broker: TansuBroker, mode: str) -> None:
    """Batches of a 6-partition topic applied side by side (or a poll's partitions together); the batch
    holding the poison event falls back to one event per transaction, the poison one is dead-lettered,
    every other event applied once.
    批处理器 + 分区并行（或合并）：含毒消息的批次逐条重试，毒消息进死信，其余各处理一次。"""
    topic = INCIDENT_REPORTED  # 6 partitions; the runner does not care about the payload type
    await ensure_topics(own_broker.bootstrap, [topic])
    good = [envelope(f"36{i:04d}", i) for i in range(60)]
    bad = envelope("POISON", 99)
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.bootstrap, acks="all")
    await producer.start()
    try:
        for e in [*good[:30], bad, *good[30:]]:
            await producer.send(topic, key=str(e.id).encode(), value=e.to_bytes())
        await producer.send(topic, key=b"x", value=b"not json at all")
        await producer.flush()
    finally:
        await producer.stop()
    publisher = KafkaPublisher(bootstrap=own_broker.bootstrap, client_id="t")
    handler = BatchRecorder(poison="POISON")
    r = ConsumerRunner(group_id=f"g-batch-{mode}", topics=[topic], bootstrap=own_broker.bootstrap,
                       sessions=session_factory(engine), processed=processed, batch_handler=handler,
                       publisher=publisher, max_batch=500, max_attempts=2, **{mode: True})
    r.start()
    try:
        await eventually(lambda: _eq(count_applied(engine), 60), timeout_s=30)
        dead = await read_topic(own_broker.bootstrap, dlq_topic(topic), expect=2)
        reasons = sorted(dict(d.headers)["dlq_reason"].decode() for d in dead)
        assert reasons[0].startswith("contract: not JSON")
        assert reasons[1].startswith("handler failed 2×: RuntimeError: this county breaks the batch")
        await asyncio.sleep(0.5)
        assert (await count_applied(engine), r.applied) == (60, 60)
        assert max(handler.sizes) > 1 and 1 in handler.sizes  # batched, and retried one by one
        async with engine.connect() as conn:
            outcome = (await conn.execute(select(processed.c.outcome).where(processed.c.event_id == bad.id))).scalar()
        assert outcome == "dead_lettered"
    finally:
        await r.stop()
        await publisher.stop()


async def test_rebalance_with_concurrent_partitions_applies_each_event_once(
        engine: AsyncEngine, own_broker: TansuBroker) -> None:
    """Two runners in concurrent mode on a 6-partition topic; the second joins while batches are in
    flight: every event applied exactly once. 并行模式下中途加入第二个消费者：每个事件恰好处理一次。"""
    topic = INCIDENT_REPORTED
    await ensure_topics(own_broker.bootstrap, [topic])
    events = [envelope(f"37{i:04d}", i) for i in range(240)]

    async def produce_many(chunk: list[EventEnvelope[Any]]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=own_broker.bootstrap, acks="all")
        await producer.start()
        try:
            for e in chunk:
                await producer.send(topic, key=str(e.id).encode(), value=e.to_bytes())
            await producer.flush()
        finally:
            await producer.stop()

    publisher = KafkaPublisher(bootstrap=own_broker.bootstrap, client_id="t")

    def concurrent_runner() -> ConsumerRunner:
        return ConsumerRunner(group_id="g-rebalance-concurrent", topics=[topic], bootstrap=own_broker.bootstrap,
                              sessions=session_factory(engine), processed=processed,
                              batch_handler=BatchRecorder(delay_s=0.05), publisher=publisher, max_batch=20,
                              concurrent_partitions=True)

    a = concurrent_runner()
    a.start()
    await produce_many(events[:120])
    b = concurrent_runner()
    b.start()  # joins mid-stream: partitions move while batches are in flight
    await produce_many(events[120:])
    try:
        await eventually(lambda: _eq(count_applied(engine), 240), timeout_s=60)
        await asyncio.sleep(1.0)
        assert await count_applied(engine) == 240
        async with engine.connect() as conn:
            keys = (await conn.execute(select(func.count()).select_from(processed))).scalar_one()
        assert keys == 240 and a.applied + b.applied == 240
    finally:
        await a.stop()
        await b.stop()
        await publisher.stop()


class PartitionRecorder(BatchRecorder):
    """A batch recorder that notes which partitions each batch's events came from. 记录每批来自哪些分区。"""

    def __init__(self, partition_of: dict[Any, int]) -> None:
        super().__init__()
        self.partition_of = partition_of
        self.partitions: list[set[int]] = []

    async def __call__(self, uow: UnitOfWork, envs: list[EventEnvelope[Any]]) -> None:
        self.partitions.append({self.partition_of[e.id] for e in envs})
        await super().__call__(uow, envs)


async def test_a_polls_partitions_applied_together_in_one_transaction(
        engine: AsyncEngine, own_broker: TansuBroker) -> None:
    """``partitions_together`` (the live lane): records of several partitions reach the batch handler
    in one call, each event applied once, every partition's position recorded and its offset committed.
    多个分区的记录在一次调用（一个事务）中处理；每个事件一次，各分区位置与偏移均记录、提交。"""
    topic = INCIDENT_REPORTED
    await ensure_topics(own_broker.bootstrap, [topic])
    events = [envelope(f"38{i:04d}", i) for i in range(60)]
    partition_of: dict[Any, int] = {}
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.bootstrap, acks="all")
    await producer.start()
    try:
        for e in events:
            sent = await producer.send_and_wait(topic, key=str(e.id).encode(), value=e.to_bytes())
            partition_of[e.id] = sent.partition
    finally:
        await producer.stop()
    ends: dict[int, int] = {}
    for p in partition_of.values():
        ends[p] = ends.get(p, 0) + 1
    assert len(ends) > 1
    publisher = KafkaPublisher(bootstrap=own_broker.bootstrap, client_id="t")
    handler = PartitionRecorder(partition_of)
    group = "g-together"
    r = ConsumerRunner(group_id=group, topics=[topic], bootstrap=own_broker.bootstrap,
                       sessions=session_factory(engine), processed=processed, batch_handler=handler,
                       publisher=publisher, max_batch=500, partitions_together=True)
    r.start()
    try:
        await eventually(lambda: _eq(count_applied(engine), 60), timeout_s=30)
        assert (await count_applied(engine), r.applied, sum(handler.sizes)) == (60, 60, 60)
        assert max(len(partitions) for partitions in handler.partitions) > 1
        positions = processed.metadata.tables["runner_test.consumer_positions"]
        async with engine.connect() as conn:
            rows = (await conn.execute(
                select(positions.c.partition, positions.c.next_offset).where(positions.c.consumer == group)
            )).all()
        recorded = {partition: next_offset for partition, next_offset in rows}
        assert recorded == ends  # offsets start at 0 on a fresh broker: next offset = records in the partition
        consumer = r._consumer
        assert consumer is not None

        async def broker_has_the_positions() -> bool:
            # The broker's commit follows the transaction in the background (shared.messaging.offset_commits).
            committed = {tp.partition: await consumer.committed(tp) for tp in consumer.assignment()}
            return {p: o for p, o in committed.items() if p in ends} == ends

        await eventually(broker_has_the_positions, timeout_s=30)
    finally:
        await r.stop()
        await publisher.stop()


def test_a_runner_applies_partitions_side_by_side_or_together_not_both(engine: AsyncEngine) -> None:
    publisher = KafkaPublisher(bootstrap="127.0.0.1:1", client_id="t")
    with pytest.raises(ValueError, match="exclude each other"):
        ConsumerRunner(group_id="g", topics=["t"], bootstrap="127.0.0.1:1", sessions=session_factory(engine),
                       processed=processed, batch_handler=BatchRecorder(), publisher=publisher,
                       concurrent_partitions=True, partitions_together=True)


class HeldBatchRecorder(BatchRecorder):
    """A batch recorder whose batches wait for ``release`` (set by the test). 可被测试挡住的批处理器。"""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    async def __call__(self, uow: UnitOfWork, envs: list[EventEnvelope[Any]]) -> None:
        self.entered.set()
        await self.release.wait()
        await super().__call__(uow, envs)


async def test_a_bulk_batch_waits_while_a_live_batch_is_in_hand(
        engine: AsyncEngine, own_broker: TansuBroker) -> None:
    """Live and bulk lanes sharing one LivePriority: while a live batch is in hand, the bulk runner
    fetches its records but does not start applying them; once the live batch is done, it does.
    实时批次在途时，批量消费者取到消息但不开始处理；实时批次完成后才处理。"""
    live_topic, bulk_topic = INCIDENT_REPORTED, INCIDENT_REPORTED_BULK
    await ensure_topics(own_broker.bootstrap, [live_topic, bulk_topic])
    publisher = KafkaPublisher(bootstrap=own_broker.bootstrap, client_id="t")
    priority = LivePriority()
    live_handler, bulk_handler = HeldBatchRecorder(), BatchRecorder()
    live = ConsumerRunner(group_id="g-live", topics=[live_topic], bootstrap=own_broker.bootstrap,
                          sessions=session_factory(engine), processed=processed, batch_handler=live_handler,
                          publisher=publisher, concurrent_partitions=True, priority=priority)
    bulk = ConsumerRunner(group_id="g-bulk", topics=[bulk_topic], bootstrap=own_broker.bootstrap,
                          sessions=session_factory(engine), processed=processed, batch_handler=bulk_handler,
                          publisher=publisher, concurrent_partitions=True, priority=priority, bulk=True)
    live_events = [envelope(f"38{i:04d}", i) for i in range(3)]
    bulk_events = [envelope(f"39{i:04d}", i) for i in range(40)]
    producer = AIOKafkaProducer(bootstrap_servers=own_broker.bootstrap, acks="all")
    await producer.start()
    live.start()
    bulk.start()
    try:
        for e in live_events:
            await producer.send(live_topic, key=str(e.id).encode(), value=e.to_bytes())
        await producer.flush()
        await asyncio.wait_for(live_handler.entered.wait(), 30)  # a live batch is in hand, held
        assert priority.live_in_hand >= 1
        for e in bulk_events:
            await producer.send(bulk_topic, key=str(e.id).encode(), value=e.to_bytes())
        await producer.flush()

        async def bulk_waiting() -> bool:
            return priority.bulk_waits >= 1

        await eventually(bulk_waiting, timeout_s=30)  # the bulk runner fetched records and stopped at the gate
        assert (bulk_handler.sizes, await count_applied(engine)) == ([], 0)
        live_handler.release.set()
        await eventually(lambda: _eq(count_applied(engine), 43), timeout_s=30)
        assert (live.applied, bulk.applied, priority.live_in_hand) == (3, 40, 0)
    finally:
        live_handler.release.set()
        await producer.stop()
        await live.stop()
        await bulk.stop()
        await publisher.stop()


def test_a_runner_needs_a_handler() -> None:
    with pytest.raises(ValueError, match="handler"):
        ConsumerRunner(group_id="g", topics=["t"], bootstrap="127.0.0.1:1", sessions=None,  # type: ignore[arg-type]
                       processed=processed, publisher=None)  # type: ignore[arg-type]


async def produce_with_epochs(broker: TansuBroker, parts: list[tuple[str, list[EventEnvelope[Any]]]]) -> None:
    """Publish like the outbox relay: each envelope with its log epoch header (one key: one partition)."""
    publisher = KafkaPublisher(bootstrap=broker.bootstrap, client_id="epochs")
    try:
        for epoch, envelopes in parts:
            await publisher.send_batch([
                (JURISDICTION_CHANGED, b"330127", e.to_bytes(), [*e.headers(), ("log_epoch", epoch.encode())])
                for e in envelopes
            ])
    finally:
        await publisher.stop()


@pytest.mark.parametrize("concurrent", [False, True])
async def test_an_epoch_change_in_a_whole_log_is_read_on(
        engine: AsyncEngine, own_broker: TansuBroker, concurrent: bool) -> None:
    """A producer that renews its epoch in a log the broker kept: every event is applied once
    (where a fetch starts exactly at the change, the partition is read again: duplicates skipped)."""
    events = [envelope("330127", v) for v in range(30)]
    await ensure_topics(own_broker.bootstrap, [JURISDICTION_CHANGED])
    await produce_with_epochs(own_broker, [("e1", events[:12]), ("e2", events[12:20]), ("e3", events[20:])])
    publisher = KafkaPublisher(bootstrap=own_broker.bootstrap, client_id="t")
    r = runner(engine, own_broker, Recorder(), f"g-epochs-{concurrent}", publisher)
    r.concurrent_partitions = concurrent
    r.start()
    try:
        await eventually(lambda: _equals(count_applied(engine), 30), timeout_s=30)
    finally:
        await r.stop()
        await publisher.stop()
    assert r.applied == 30
    async with engine.connect() as conn:
        versions = (await conn.execute(select(applied.c.version).order_by(applied.c.version))).scalars().all()
    assert versions == list(range(30))


async def _equals(value: Any, expected: int) -> bool:
    return bool(await value == expected)


async def test_a_position_in_a_lost_log_is_read_again_from_the_beginning(
        engine: AsyncEngine, own_broker: TansuBroker) -> None:
    """The broker restarts empty; the producer republishes what it kept (one more event first, then
    all under a new epoch, in their order). The consumer's position (recorded in PostgreSQL) points
    into the new log: it notices the epoch changed under it, reads the partition again from the
    beginning, and applies every event exactly once."""
    events = [envelope("330127", v) for v in range(40)]
    await produce_with_epochs(own_broker, [("old", events[:25])])
    publisher = KafkaPublisher(bootstrap=own_broker.bootstrap, client_id="t")
    first = runner(engine, own_broker, Recorder(), "g-lost", publisher)
    first.start()
    try:
        await eventually(lambda: _equals(count_applied(engine), 25), timeout_s=30)
    finally:
        await first.stop()
    own_broker.kill()
    own_broker.start()
    # Events 0–9 were released (consumed); 10–24 retained and republished, then 25–39 are new.
    await ensure_topics(own_broker.bootstrap, [JURISDICTION_CHANGED])
    await produce_with_epochs(own_broker, [("new", events[10:])])
    second = runner(engine, own_broker, Recorder(), "g-lost", publisher)
    second.start()
    try:
        await eventually(lambda: _equals(count_applied(engine), 40), timeout_s=30)
    finally:
        await second.stop()
        await publisher.stop()
    assert second.rewinds == 1
    assert second.applied == 15  # the new events 25–39, each once
    # The republished 10–24 were read again and skipped. Once in CI one more batch (``max_batch`` = 7)
    # was read twice (22 duplicates: a fetch in flight at the rewind, or a group rejoin, was not pinned
    # down); it was skipped like them. What must hold exactly is that each event is applied once.
    # 重发的 10–24 被重读并跳过；CI 中曾多重读一批（共 22 条），同样跳过。必须精确成立的是每个事件只应用一次。
    assert second.duplicates >= 15
    async with engine.connect() as conn:
        versions = (await conn.execute(select(applied.c.version).order_by(applied.c.version))).scalars().all()
    assert versions == list(range(40))  # every event applied exactly once


async def test_a_position_beyond_a_shorter_new_log_is_read_again_from_the_beginning(
        engine: AsyncEngine, own_broker: TansuBroker) -> None:
    """The broker restarts empty and the producer republishes fewer records than the consumer had
    read (the rest were released once consumed), then nothing new arrives: the recorded position
    lies beyond the new log's end, where no record (and so no epoch to check) will ever come. The
    consumer reads the partition again from the beginning and applies what it had not.
    新日志比所记位置短且再无新消息：从头重读，不会永远等待。"""
    events = [envelope("330128", v) for v in range(30)]
    await produce_with_epochs(own_broker, [("old", events[:25])])
    publisher = KafkaPublisher(bootstrap=own_broker.bootstrap, client_id="t")
    first = runner(engine, own_broker, Recorder(), "g-short", publisher)
    first.start()
    try:
        await eventually(lambda: _equals(count_applied(engine), 25), timeout_s=30)
    finally:
        await first.stop()
    own_broker.kill()
    own_broker.start()
    # Events 0–19 were released; 20–24 retained and republished, then 25–29 new: 10 records < 25.
    await ensure_topics(own_broker.bootstrap, [JURISDICTION_CHANGED])
    await produce_with_epochs(own_broker, [("new", events[20:])])
    second = runner(engine, own_broker, Recorder(), "g-short", publisher)
    second.start()
    try:
        await eventually(lambda: _equals(count_applied(engine), 30), timeout_s=60)
    finally:
        await second.stop()
        await publisher.stop()
    assert second.rewinds == 1
    # Exactly the five new ones applied; every record read again was skipped. How many were read
    # again depends on timing (the fetcher may read from the broker's reset position before the
    # rewind), so only the lower bound is fixed. 恰好应用 5 条新记录；重读条数取决于时序，只定下限。
    assert second.applied == 5 and second.duplicates >= 5


async def test_stop_with_the_broker_already_gone_raises_nothing(engine: AsyncEngine, own_broker: TansuBroker) -> None:
    """Shutdown after the broker died (a Ctrl-C that reached the broker first): the consumer stops
    without raising; its position was recorded after each batch, so nothing is re-read or lost."""
    events = [envelope("330127", v) for v in range(10)]
    await produce(own_broker.bootstrap, [(e.subject or "", e.to_bytes()) for e in events])
    publisher = KafkaPublisher(bootstrap=own_broker.bootstrap, client_id="t")
    r = runner(engine, own_broker, Recorder(), "g-gone", publisher)
    r.start()
    await eventually(lambda: _equals(count_applied(engine), 10), timeout_s=30)
    own_broker.kill()
    await r.stop()
    await publisher.stop()
    assert r.applied == 10
