"""Kafka plumbing: topic creation, a publisher that survives broker outages,
and the consumer runner every service uses.

Consumer runner rules (process at least once, apply exactly once):

* ``enable_auto_commit=False``; a partition's offset is committed only after
  the database transaction that applied its messages has committed.
* Handlers are idempotent: each event id is recorded in the service's
  ``processed_messages`` table in the same transaction as its effects, so a
  redelivered message is skipped.
* A message that does not fit the contract, or keeps failing, goes to
  ``<topic>.dlq`` with the reason and its original headers; consumption goes on.
* The database being down is not the message's fault: the runner rewinds and
  retries with back-off, it never dead-letters because of an outage.
* A rebalance listener waits for the in-flight batch (applied and committed)
  before partitions are handed over; stop() does the same.
* A *batch handler* (``batch_handler=``) may replace the per-event handler: it gets
  every fresh event of a partition batch at once (after the idempotency claim, in
  the same transaction) so a service can apply them with a few set-based
  statements. On failure the runner falls back to one event per transaction
  exactly as with a per-event handler (the batch handler is then called with a
  single envelope), so a poison event is still isolated and dead-lettered.
  批处理器：一次拿到分区批次中全部新事件（在去重登记之后、同一事务内），以少量集合
  语句完成；失败时同样逐条重试，毒消息仍被隔离并进入死信队列。
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError
from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, Text, Uuid, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import is_database_unavailable
from shared.events import TOPICS, ContractError, EventEnvelope, decode_envelope, dlq_topic
from shared.log_epochs import EpochTracker
from shared.logging import bind_correlation, clear_correlation, get_logger
from shared.observability import PlatformMetrics

log = get_logger(__name__)


# --------------------------------------------------------------------------- topics


async def ensure_topics(bootstrap: str, topics: Sequence[str] | None = None, *, timeout_s: float = 10.0) -> None:
    """Create the registry's topics (and their ``.dlq``) that do not exist yet."""
    wanted: dict[str, int] = {}
    for name in topics or list(TOPICS):
        partitions = TOPICS[name].partitions if name in TOPICS else 1
        wanted[name] = partitions
        wanted[dlq_topic(name)] = 1
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        # All topics (naming none: Tansu would auto-create a named missing topic with its default count).
        existing = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(None)}
        missing = [NewTopic(n, num_partitions=p, replication_factor=1) for n, p in wanted.items() if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        fewer = {n: (existing[n], p) for n, p in wanted.items() if n in existing and existing[n] < p}
        if fewer:
            # A broker that auto-created a topic (a consumer asked for it first) gave it its own count.
            # Correct either way (keys keep one partition each); only parallelism is lower.
            log.warning("topics have fewer partitions than the registry's", topics=fewer)
    finally:
        await admin.close()


# --------------------------------------------------------------------------- producer


_M = np.uint32(0x5BD1E995)


def murmur2_many(keys: Sequence[bytes]) -> npt.NDArray[np.uint32]:
    """Kafka's murmur2 (the Java client's ``Utils.murmur2``, aiokafka's ``DefaultPartitioner``) of
    many keys at once, vectorised per key length: ~9 µs per key in pure Python, well under 1 µs here.
    The partition of a key is ``(hash & 0x7FFFFFFF) % partitions``, as every Kafka client computes it.
    Kafka 默认分区器的 murmur2 哈希，按键长向量化批量计算。"""
    out = np.empty(len(keys), dtype=np.uint32)
    by_length: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(i)
    for length, where in by_length.items():
        data = np.frombuffer(b"".join(keys[i] for i in where), dtype=np.uint8).reshape(len(where), length)
        h = np.full(len(where), (0x9747B28C ^ length) & 0xFFFFFFFF, dtype=np.uint32)
        blocks = length // 4
        if blocks:
            words = np.ascontiguousarray(data[:, : blocks * 4]).view("<u4")
            for j in range(blocks):
                k = words[:, j] * _M
                k ^= k >> np.uint32(24)
                k *= _M
                h *= _M
                h ^= k
        tail = blocks * 4
        if length % 4 >= 3:
            h ^= data[:, tail + 2].astype(np.uint32) << np.uint32(16)
        if length % 4 >= 2:
            h ^= data[:, tail + 1].astype(np.uint32) << np.uint32(8)
        if length % 4 >= 1:
            h ^= data[:, tail].astype(np.uint32)
            h *= _M
        h ^= h >> np.uint32(13)
        h *= _M
        h ^= h >> np.uint32(15)
        out[where] = h
    return out


def producer_options(*, enable_idempotence: bool) -> dict[str, Any]:
    """One place for the producer settings the platform uses (and the bench's floor reuses)."""
    return {
        "acks": "all",
        "enable_idempotence": enable_idempotence,
        "linger_ms": 5,
        "max_batch_size": 512 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        "request_timeout_ms": 10_000,
        "retry_backoff_ms": 200,
    }


#: Headers added per (topic, partition) at send time. 按（主题，分区）在发送时追加的消息头。
ExtraHeaders = Callable[[str, int], Sequence[tuple[str, bytes]]]


class KafkaPublisher:
    """An ``AIOKafkaProducer`` that is (re)started lazily, so a service starts and keeps
    accepting work while the broker is down; :attr:`up` reports the broker's state."""

    def __init__(
        self,
        *,
        bootstrap: str,
        client_id: str,
        enable_idempotence: bool = False,
        metrics: PlatformMetrics | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.enable_idempotence = enable_idempotence
        self.metrics = metrics
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self.up = False
        self.last_error: str | None = None

    async def _ensure(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    client_id=self.client_id,
                    **producer_options(enable_idempotence=self.enable_idempotence),
                )
                try:
                    await asyncio.wait_for(producer.start(), 10)
                    await ensure_topics(self.bootstrap)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    def _mark(self, up: bool, error: str | None = None) -> None:
        self.up = up
        self.last_error = error
        if self.metrics is not None:
            self.metrics.broker_up.set(1 if up else 0)

    async def send_batch(
        self,
        messages: Sequence[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]],
        timeout_s: float = 15.0,
        *,
        extra_headers: ExtraHeaders | None = None,
    ) -> list[tuple[int, int]]:
        """Send (topic, key, value, headers) tuples and wait until the broker acked every one.

        Returns the (partition, offset) the broker gave each message, in the order given.
        ``extra_headers(topic, partition)`` adds headers that depend on the partition chosen (the
        outbox relay's log epoch). Raises on any failure; the caller keeps the messages (outbox
        rows) for the next try. 返回每条消息的（分区，偏移）；失败则抛出，由调用方保留消息。
        """
        try:
            producer = await self._ensure()
            futures, indices, placed = await self._submit(producer, messages, extra_headers)
            acks = await asyncio.wait_for(asyncio.gather(*futures), timeout_s)
        except Exception as exc:
            self._mark(False, f"{type(exc).__name__}: {exc}")
            await self._reset()
            raise
        self._mark(True)
        positions: list[tuple[int, int]] = [(-1, -1)] * len(messages)
        for ack, members in zip(acks, indices, strict=True):
            # A record batch's ack carries its base offset; its records follow one by one.
            for i, index in enumerate(members):
                positions[index] = (placed[index], ack.offset + i)
        return positions

    async def _submit(
        self,
        producer: AIOKafkaProducer,
        messages: Sequence[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]],
        extra_headers: ExtraHeaders | None = None,
    ) -> tuple[list[asyncio.Future[Any]], list[list[int]], list[int]]:
        """Queue the messages as whole record batches, one per partition (per-message ``send``
        costs ~50 % more CPU). Partitions are chosen as ``send`` would (murmur2 of the key, here
        for the whole batch at once), so a key's messages keep their partition and order; the
        producer keeps one in-flight batch per partition. Returns the futures, the message indices
        each future carries (in offset order) and each message's partition.
        按分区组批发送；分区选择与逐条 ``send`` 相同（键的 murmur2，整批计算），同键消息保持分区与顺序。"""
        partitions: dict[str, list[int]] = {}
        for topic, *_ in messages:
            if topic not in partitions:
                partitions[topic] = sorted(await producer.partitions_for(topic))
        hashes = murmur2_many([key or b"" for _, key, _, _ in messages])
        builders: dict[tuple[str, int], tuple[Any, list[int]]] = {}
        extras: dict[tuple[str, int], list[tuple[str, bytes]]] = {}
        futures: list[asyncio.Future[Any]] = []
        indices: list[list[int]] = []
        placed: list[int] = []
        for index, ((topic, key, value, headers), hashed) in enumerate(zip(messages, hashes.tolist(), strict=True)):
            all_partitions = partitions[topic]
            if key is None:
                partition = random.choice(all_partitions)
            else:
                partition = all_partitions[(hashed & 0x7FFFFFFF) % len(all_partitions)]
            placed.append(partition)
            if extra_headers is not None:
                extra = extras.get((topic, partition))
                if extra is None:
                    extra = extras[topic, partition] = list(extra_headers(topic, partition))
                headers = [*headers, *extra]
            entry = builders.get((topic, partition))
            if entry is None:
                entry = builders[topic, partition] = (producer.create_batch(), [])
            builder, members = entry
            if builder.append(key=key, value=value, timestamp=None, headers=headers) is not None:
                members.append(index)
                continue
            # The batch is full: send it and start the next one for this partition.
            if builder.record_count():
                futures.append(await producer.send_batch(builder, topic, partition=partition))
                indices.append(members)
            builder, members = builders[topic, partition] = (producer.create_batch(), [])
            if builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                # Larger than a whole batch on its own: the producer sends it as a single record.
                del builders[topic, partition]
                futures.append(await producer.send(topic, value=value, key=key, partition=partition, headers=headers))
                indices.append([index])
            else:
                members.append(index)
        for (topic, partition), (builder, members) in builders.items():
            if builder.record_count():
                futures.append(await producer.send_batch(builder, topic, partition=partition))
                indices.append(members)
        return futures, indices, placed

    async def _reset(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5)

    async def reconnect(self) -> None:
        """Drop the producer: the next send starts a new one, with fresh metadata, after creating
        the registry's topics. Called when the broker is found to have lost its logs: a producer
        with the old metadata would send to topics the broker no longer has (Tansu acks such
        records and keeps none of them). 代理丢失日志后重建生产者（刷新元数据并重建主题）。"""
        await self._reset()

    async def stop(self) -> None:
        await self._reset()


# --------------------------------------------------------------------------- consumer


def processed_messages_table(metadata: MetaData) -> Table:
    """Idempotency keys of consumed events, in the consuming service's schema; declares the
    consumers' positions beside it (:func:`consumer_positions_table`)."""
    if f"{metadata.schema}.consumer_positions" not in metadata.tables:
        consumer_positions_table(metadata)
    return Table(
        "processed_messages",
        metadata,
        Column("consumer", Text, primary_key=True),
        Column("event_id", Uuid, primary_key=True),
        Column("outcome", Text, nullable=False, server_default="applied"),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def consumer_positions_table(metadata: MetaData) -> Table:
    """Where each consumer group is in each partition, and what it applied last there (epoch and
    event id): kept in PostgreSQL because a broker may forget commits, or keep a commit made
    against a log it then lost (see :mod:`shared.log_epochs`). 各消费组在各分区的位置及最后处理的记录。"""
    return Table(
        "consumer_positions",
        metadata,
        Column("consumer", Text, primary_key=True),
        Column("topic", Text, primary_key=True),
        Column("partition", Integer, primary_key=True),
        Column("next_offset", BigInteger, nullable=False),
        Column("epoch", Text, nullable=True),
        Column("last_event_id", Text, nullable=True),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


#: Applies one event in the caller's transaction. 在调用方事务中处理一个事件。
Handler = Callable[[AsyncSession, EventEnvelope[Any]], Awaitable[None]]
#: Applies several events (in partition order) in the caller's transaction. 在调用方事务中按序处理多个事件。
BatchHandler = Callable[[AsyncSession, list[EventEnvelope[Any]]], Awaitable[None]]


class _RevokeListener(ConsumerRebalanceListener):
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Waits for the in-flight batches: applied and their offsets committed before hand-over.
        async with self.runner._inflight:
            await self.runner._drain()
            log.info("partitions revoked", consumer=self.runner.group_id, partitions=sorted(map(str, revoked)))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.runner._draining = False
        await self.runner._resume(assigned)
        log.info("partitions assigned", consumer=self.runner.group_id, partitions=sorted(map(str, assigned)))


class ConsumerRunner:
    """Consumes topics with a consumer group and applies each partition batch in one database transaction.

    以消费组消费主题，每个分区批次在一个数据库事务中处理。

    ``handler`` is called once per fresh event; ``batch_handler``, when given, is
    called instead with all fresh events of the batch (partition order). Either way
    a failing batch is retried one event per transaction, up to ``max_attempts``
    each, before the event is dead-lettered. ``handler`` 逐条调用；给出
    ``batch_handler`` 时改为整批调用；批次失败时都逐条重试，仍失败则进死信。

    ``concurrent_partitions``: the partitions of one poll are applied side by side (one
    transaction each) instead of one after the other — only for handlers whose
    transactions cannot deadlock each other (different partitions never touch the same
    rows, or take their locks in one global order). ``poll_timeout_ms``: how long one
    poll waits for records when there are none (the broker answers as soon as any
    arrive). ``fetch_max_wait_ms``: how long the broker may hold a fetch that found nothing;
    Apache Kafka answers as soon as records arrive, but Tansu (the embedded default) holds
    the fetch for the whole wait, so this bounds the added latency per hop there (aiokafka's
    default of 500 ms would add up to 0.5 s) at the price of more idle fetch requests.
    同一次拉取的各分区可并行处理（仅适用于各分区事务不会互相死锁的处理器）；
    ``poll_timeout_ms`` 为无消息时单次拉取的等待时长；``fetch_max_wait_ms`` 为代理在无消息时
    挂起拉取请求的上限——Tansu 不会因新消息提前应答，故它决定每一跳增加的时延。
    """

    def __init__(
        self,
        *,
        group_id: str,
        topics: Sequence[str],
        bootstrap: str,
        sessions: async_sessionmaker[AsyncSession],
        processed: Table,
        handler: Handler | None = None,
        publisher: KafkaPublisher,
        batch_handler: BatchHandler | None = None,
        metrics: PlatformMetrics | None = None,
        max_batch: int = 500,
        max_attempts: int = 3,
        after_commit: Callable[[], None] | None = None,
        client_id: str | None = None,
        concurrent_partitions: bool = False,
        poll_timeout_ms: int = 200,
        fetch_max_wait_ms: int = 100,
    ) -> None:
        self.group_id = group_id
        self.topics = list(topics)
        self.bootstrap = bootstrap
        self.sessions = sessions
        if handler is None and batch_handler is None:
            raise ValueError("ConsumerRunner needs a handler or a batch_handler")
        self.processed = processed
        self.positions = processed.metadata.tables[f"{processed.schema}.consumer_positions"]
        self.handler = handler
        self.batch_handler = batch_handler
        self.publisher = publisher
        self.metrics = metrics
        self.max_batch = max_batch
        self.max_attempts = max_attempts
        self.after_commit = after_commit
        self.client_id = client_id or group_id
        self.concurrent_partitions = concurrent_partitions
        self.poll_timeout_ms = poll_timeout_ms
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._inflight = asyncio.Lock()
        #: Concurrent mode: the batch being applied per partition. 并行模式：各分区正在处理的批次。
        self._partition_tasks: dict[TopicPartition, asyncio.Task[None]] = {}
        self._partition_sizes: dict[TopicPartition, int] = {}
        self._draining = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.running = False
        self.applied = 0
        self.duplicates = 0
        #: Per partition, the log epoch and event id of the last record applied (see shared.log_epochs).
        self._epochs = EpochTracker()
        self.rewinds = 0
        #: For readiness: last batch applied (monotonic time) and records behind per partition.
        self.last_progress = time.monotonic()
        self.lag: dict[TopicPartition, int] = {}

    # -- lifecycle
    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name=f"consumer:{self.group_id}")

    async def stop(self) -> None:
        """Finish the batch in hand (applied and committed), leave the group, close. With the broker
        already gone the offsets stay uncommitted and the next run re-reads (deduplicated); nothing
        is raised. 完成在途批次并提交后退出；代理已不在时不抛错（下次重读并去重）。"""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 30)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            except Exception as exc:
                log.warning("consumer stopped with an error", consumer=self.group_id, error=repr(exc))

    async def _run_forever(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                await self._run_once()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker gone, coordinator lost…: reconnect with back-off
                log.warning("consumer restarting", consumer=self.group_id, error=repr(exc))
                if self.metrics:
                    self.metrics.broker_up.set(0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, 10)

    async def _run_once(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_batch,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            rebalance_timeout_ms=30_000,
            metadata_max_age_ms=5_000,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
        )
        await asyncio.wait_for(consumer.start(), 15)
        self._consumer = consumer
        try:
            await ensure_topics(self.bootstrap, self.topics)
            consumer.subscribe(self.topics, listener=_RevokeListener(self))
            self.running = True
            while not self._stopping.is_set():
                if self.concurrent_partitions:
                    await self._poll_concurrently(consumer)
                    continue
                batches = await consumer.getmany(timeout_ms=self.poll_timeout_ms, max_records=self.max_batch)
                if not batches:
                    continue
                async with self._inflight:
                    for tp, records in batches.items():
                        if self._stopping.is_set() and not records:
                            break
                        await self._process_partition(consumer, tp, records)
                    self._update_lag(consumer, batches)
        finally:
            self.running = False
            with contextlib.suppress(Exception):
                await self._drain()
            self._draining = False
            self._consumer = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 10)

    async def _poll_concurrently(self, consumer: AIOKafkaConsumer) -> None:
        """One poll of the concurrent mode: each partition not busy gets its next batch as a task of its own.

        并行模式的一次拉取：空闲分区的下一批各自成为一个任务（分区内仍按序，分区间互不等待）。

        A partition is never applied by two tasks at once (its order holds); partitions do not
        wait for each other, so one's Python work overlaps another's database round trips and a
        slow batch does not hold the others back. A failed task restarts the consumer as in the
        sequential mode (its offsets were not committed).
        """
        for tp in [tp for tp, task in self._partition_tasks.items() if task.done()]:
            self._partition_tasks.pop(tp).result()
            self._partition_sizes.pop(tp, None)
        busy = self._partition_tasks
        free = [tp for tp in consumer.assignment() if tp not in busy]
        # At most max_batch records in flight in all (memory, and the locks handlers hold).
        # 在途记录总数不超过 max_batch（内存，以及处理器持有的锁）。
        budget = self.max_batch - sum(self._partition_sizes.values())
        if self._draining or not free or budget < max(1, self.max_batch // 10):
            if busy:
                await asyncio.wait(list(busy.values()), timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(0.01)
            return
        # While batches are in flight, poll briefly so a partition that finishes is fed again soon.
        # 有批次在处理时短轮询，分区处理完即可尽快取下一批。
        timeout_ms = 5 if busy else self.poll_timeout_ms
        batches = await consumer.getmany(*free, timeout_ms=timeout_ms, max_records=budget)
        # Applied even if a rebalance began meanwhile (the drain waits for them too); a new owner
        # reading them again skips them by their ids. 期间开始再均衡也照常处理（排空会等待），新属主按 id 去重。
        for tp, records in batches.items():
            if records:
                busy[tp] = asyncio.create_task(self._process_partition(consumer, tp, records))
                self._partition_sizes[tp] = len(records)
        self._update_lag(consumer, batches)

    async def _drain(self) -> None:
        """Concurrent mode: stop starting batches and wait for those in flight. 停止新批次并等待在途批次完成。"""
        self._draining = True
        while self._partition_tasks:
            tasks = list(self._partition_tasks.values())
            await asyncio.wait(tasks)
            for tp in [tp for tp, task in self._partition_tasks.items() if task.done()]:
                task = self._partition_tasks.pop(tp)
                self._partition_sizes.pop(tp, None)
                if not task.cancelled() and task.exception() is not None:
                    log.warning("partition batch failed", consumer=self.group_id, error=repr(task.exception()))

    def _update_lag(self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        for tp, records in batches.items():
            high = consumer.highwater(tp)
            if high is not None and records:
                self.lag[tp] = max(0, high - records[-1].offset - 1)
                if self.metrics is not None:
                    self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(self.lag[tp])

    # -- log epochs: a commit or a position made against a log the broker lost is not trusted
    async def _resume(self, assigned: set[TopicPartition]) -> None:
        """On assignment: continue each partition where this group's last applied record was, as
        PostgreSQL recorded it (the broker's commit may be gone, or made against a log it lost);
        the epoch and event id recorded with it let the first records read be checked (see
        :mod:`shared.log_epochs`). Without a recorded position the broker's commit (or the
        earliest offset) stands. 分配时从数据库记录的位置继续，并据所记纪元核对所读日志。"""
        consumer = self._consumer
        for tp in assigned:
            self._epochs.forget(tp)
        if not assigned or consumer is None:
            return
        t = self.positions
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
        for topic, partition, next_offset, epoch, last_event_id in rows:
            tp = TopicPartition(topic, partition)
            if tp in assigned:
                self._epochs.learn(tp, epoch, last_event_id)
                consumer.seek(tp, next_offset)

    async def _save_position(self, tp: TopicPartition, next_offset: int) -> None:
        """Record where the group is in ``tp`` and what it applied last there. 记录消费位置。"""
        epoch, last_event_id = self._epochs.last.get(tp, (None, None))
        values = {"consumer": self.group_id, "topic": tp.topic, "partition": tp.partition,
                  "next_offset": next_offset, "epoch": epoch, "last_event_id": last_event_id}
        stmt = pg_insert(self.positions).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["consumer", "topic", "partition"],
            set_={k: stmt.excluded[k] for k in ("next_offset", "epoch", "last_event_id")} | {"updated_at": func.now()},
        )
        while True:
            try:
                async with self.sessions() as session, session.begin():
                    await session.execute(stmt)
                return
            except Exception as exc:
                if not is_database_unavailable(exc):
                    raise
                await asyncio.sleep(1.0)

    async def _rewind(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        """The position points into a log it was not taken in: read the partition from its beginning."""
        log.warning(
            "partition's log is not the one the position was taken in; reading it again from the beginning",
            consumer=self.group_id, topic=tp.topic, partition=tp.partition,
        )
        self.rewinds += 1
        await consumer.seek_to_beginning(tp)

    # -- processing
    async def _process_partition(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[ConsumerRecord]
    ) -> None:
        if self._epochs.check(tp, records).action == "rewind":
            await self._rewind(consumer, tp)
            return
        await self._apply_and_commit(consumer, tp, records)

    async def _apply_and_commit(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[ConsumerRecord]
    ) -> None:
        decoded: list[tuple[ConsumerRecord, EventEnvelope[Any]]] = []
        for record in records:
            try:
                decoded.append((record, decode_envelope(record.value)))
            except ContractError as exc:
                await self._dead_letter(record, f"contract: {exc}")
        while True:
            try:
                await self._apply_all(decoded)
                break
            except Exception as exc:
                if is_database_unavailable(exc):
                    log.warning("database unavailable; will retry batch", consumer=self.group_id, error=repr(exc))
                    await asyncio.sleep(1.0)
                    continue
                log.warning("batch failed; applying one by one", consumer=self.group_id, error=repr(exc))
                await self._apply_one_by_one(decoded)
                break
        self.last_progress = time.monotonic()
        self._epochs.applied(tp, records)
        await self._save_position(tp, records[-1].offset + 1)
        try:
            await consumer.commit({tp: records[-1].offset + 1})
        except CommitFailedError as exc:  # rebalanced meanwhile: the new owner re-reads, dedup skips
            log.warning("offset commit failed after rebalance", consumer=self.group_id, error=repr(exc))
        if self.after_commit is not None:
            self.after_commit()

    async def _apply_all(self, items: list[tuple[ConsumerRecord, EventEnvelope[Any]]]) -> None:
        if not items:
            return
        async with self.sessions() as session, session.begin():
            fresh = await self._claim(session, [env for _, env in items])
            todo: list[tuple[ConsumerRecord, EventEnvelope[Any]]] = []
            for record, env in items:
                if env.id not in fresh:
                    self._count(record.topic, "duplicate")
                    self.duplicates += 1
                else:
                    fresh.discard(env.id)  # twice in one batch: the second is a duplicate 同批重复
                    todo.append((record, env))
            await self._handle(session, [env for _, env in todo])
        for record, _ in todo:
            self._count(record.topic, "applied")
            self.applied += 1

    async def _handle(self, session: AsyncSession, envelopes: list[EventEnvelope[Any]]) -> None:
        """Run the batch handler once, or the per-event handler for each envelope. 调用批处理器或逐条处理器。"""
        if not envelopes:
            return
        if self.batch_handler is not None:
            first = envelopes[0]
            # One correlation id in the logs: the batch's own when it is a single event.
            # 日志关联 id：单个事件时即其自身。
            bind_correlation(
                correlation_id=first.correlation_id if len(envelopes) == 1 else f"batch:{first.id}",
                event_id=str(first.id),
            )
            try:
                await self.batch_handler(session, envelopes)
            finally:
                clear_correlation()
            return
        assert self.handler is not None
        for env in envelopes:
            bind_correlation(correlation_id=env.correlation_id, event_id=str(env.id))
            try:
                await self.handler(session, env)
            finally:
                clear_correlation()

    async def _apply_one_by_one(self, items: list[tuple[ConsumerRecord, EventEnvelope[Any]]]) -> None:
        for record, env in items:
            attempt = 0
            while True:
                attempt += 1
                try:
                    await self._apply_all([(record, env)])
                    break
                except Exception as exc:
                    if is_database_unavailable(exc):
                        await asyncio.sleep(1.0)
                        attempt -= 1
                        continue
                    if attempt >= self.max_attempts:
                        await self._dead_letter(record, f"handler failed {attempt}×: {type(exc).__name__}: {exc}")
                        await self._record_outcome(env, "dead_lettered")
                        break
                    await asyncio.sleep(0.1 * attempt)

    async def _claim(self, session: AsyncSession, envelopes: list[EventEnvelope[Any]]) -> set[Any]:
        """Insert idempotency keys; returns the event ids not processed before."""
        ids = list(dict.fromkeys(env.id for env in envelopes))
        stmt = pg_insert(self.processed).on_conflict_do_nothing().returning(self.processed.c.event_id)
        rows = [{"consumer": self.group_id, "event_id": i} for i in ids]
        return set((await session.execute(stmt, rows)).scalars().all())

    async def _record_outcome(self, env: EventEnvelope[Any], outcome: str) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                pg_insert(self.processed)
                .values(consumer=self.group_id, event_id=env.id, outcome=outcome)
                .on_conflict_do_nothing()
            )

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        headers = [
            *list(record.headers or []),
            ("dlq_reason", reason[:4000].encode()),
            ("dlq_consumer", self.group_id.encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_time", datetime.now(UTC).isoformat().encode()),
        ]
        log.error(
            "dead-lettering message",
            consumer=self.group_id,
            topic=record.topic,
            offset=record.offset,
            reason=reason[:500],
        )
        while True:  # the DLQ write must be acked before the offset moves on
            try:
                await self.publisher.send_batch([(dlq_topic(record.topic), record.key, record.value or b"", headers)])
                break
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("DLQ publish failed; retrying", error=repr(exc))
                await asyncio.sleep(1.0)
        self._count(record.topic, "dead_lettered")
        if self.metrics:
            self.metrics.dlq.labels(record.topic).inc()

    def _count(self, topic: str, outcome: str) -> None:
        if self.metrics:
            self.metrics.consumed.labels(topic, outcome).inc()
