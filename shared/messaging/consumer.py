"""The consumer runner every service uses (消费者运行器).

Consumer runner rules (process at least once, apply exactly once):

* ``enable_auto_commit=False``; where the group is in each partition is recorded in PostgreSQL
  in the transaction that applied the batch (and read back on assignment,
  :mod:`shared.messaging.positions`); the broker's offset
  commit follows in the background, only after that transaction committed
  (:mod:`shared.messaging.offset_commits`).
* Each transaction is a :class:`~shared.db.UnitOfWork` (from ``unit_of_work``), handed
  to the handler: what must wait for the commit (waking the outbox relay, counters, a
  reload over the network) is registered with ``uow.after_commit``, never run inside
  the transaction. 每个事务是一个工作单元并交给处理器；需等提交后做的事登记在其上，绝不在事务内做网络调用。
* Handlers are idempotent: each event id is recorded in the service's
  ``processed_messages`` table in the same transaction as its effects, so a
  redelivered message is skipped.
* A message that does not fit the contract, or keeps failing, goes to
  ``<topic>.dlq`` with the reason and its original headers; consumption goes on.
* The database being down is not the message's fault: the runner rewinds and
  retries with back-off, it never dead-letters because of an outage.
* A rebalance listener waits for the in-flight batch (applied and committed)
  before partitions are handed over; stop() does the same. Partitions taken over stay
  paused until their positions are read back from PostgreSQL (nothing is read twice).
* A *batch handler* (``batch_handler=``) may replace the per-event handler: it gets
  every fresh event of a partition batch at once (after the idempotency claim, in
  the same transaction) so a service can apply them with a few set-based
  statements. On failure the runner falls back to one event per transaction
  exactly as with a per-event handler (the batch handler is then called with a
  single envelope), so a poison event is still isolated and dead-lettered.
  批处理器：一次拿到分区批次中全部新事件（在去重登记之后、同一事务内），以少量集合
  语句完成；失败时同样逐条重试，毒消息仍被隔离并进入死信队列。
* Two lanes (``priority=`` a shared :class:`~shared.messaging.priority.LivePriority`): a
  ``bulk=True`` runner starts a batch only when the live runners sharing it have none in hand.
  两条通道：批量消费者只在实时消费者没有在途批次时开始新批次。
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import UnitOfWork, is_database_unavailable
from shared.events import ContractError, EventEnvelope, decode_envelope, dlq_topic
from shared.logging import bind_correlation, clear_correlation, get_logger
from shared.messaging.background import Backoff, stop_task
from shared.messaging.claims import BatchClaim
from shared.messaging.offset_commits import OffsetCommits
from shared.messaging.positions import GroupPositions
from shared.messaging.priority import LivePriority
from shared.messaging.publisher import KafkaPublisher
from shared.messaging.topics import ensure_topics
from shared.observability import PlatformMetrics

log = get_logger(__name__)


async def _close_quietly(consumer: AIOKafkaConsumer) -> None:
    """Stop an aiokafka consumer whatever state the broker is in. With the broker gone its fetcher
    ends in ``NodeNotReadyError`` and cancels its own tasks, and that cancellation surfaces here:
    swallowed unless this task itself is being cancelled. 无论代理状态如何安静地关闭消费者。"""
    try:
        await asyncio.wait_for(consumer.stop(), 10)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
    except Exception as exc:
        log.info("consumer closed with an error", error=repr(exc))


#: Applies one event in the caller's unit of work. 在调用方的工作单元中处理一个事件。
Handler = Callable[[UnitOfWork, EventEnvelope[Any]], Awaitable[None]]
#: Applies several events (in partition order) in the caller's unit of work. 在调用方的工作单元中按序处理多个事件。
BatchHandler = Callable[[UnitOfWork, list[EventEnvelope[Any]]], Awaitable[None]]


class _RevokeListener(ConsumerRebalanceListener):
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.runner.partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.runner.partitions_assigned(assigned)


class ConsumerRunner:
    """Consumes topics with a consumer group and applies each partition batch in one database transaction.

    以消费组消费主题，每个分区批次在一个数据库事务中处理。

    ``handler`` is called once per fresh event; ``batch_handler``, when given, is
    called instead with all fresh events of the batch (partition order). Either way
    a failing batch is retried one event per transaction, up to ``max_attempts``
    each, before the event is dead-lettered. ``handler`` 逐条调用；给出
    ``batch_handler`` 时改为整批调用；批次失败时都逐条重试，仍失败则进死信。

    ``unit_of_work`` makes the transaction each batch (or event) is applied in; by default a
    plain :class:`~shared.db.UnitOfWork` on ``sessions`` (a service's runtime gives one whose
    commit wakes its outbox relay). 处理事务由 ``unit_of_work`` 创建（服务运行时的工作单元在提交后唤醒发件箱中继）。

    ``concurrent_partitions``: the partitions of one poll are applied side by side (one
    transaction each) instead of one after the other — only for handlers whose
    transactions cannot deadlock each other (different partitions never touch the same
    rows, or take their locks in one global order). ``poll_timeout_ms``: how long one
    poll waits for records when there are none (the broker answers as soon as any
    arrive). ``fetch_max_wait_ms``: how long the broker may hold a fetch that found nothing;
    Apache Kafka answers as soon as records arrive, but Tansu (the embedded default) holds
    the fetch for the whole wait, so this bounds the added latency per hop there (aiokafka's
    default of 500 ms would add up to 0.5 s) at the price of more idle fetch requests.
    ``partitions_together``: the partitions of one poll are applied in *one* transaction (their
    positions recorded and their offsets committed together) — for a lane that brings a few records
    per partition at a time (a live lane), where a transaction per partition would cost most of the
    work. 同一次拉取的各分区合并为一个事务（实时通道：每个分区每次只有几条记录）。
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
        unit_of_work: Callable[[], UnitOfWork] | None = None,
        client_id: str | None = None,
        concurrent_partitions: bool = False,
        partitions_together: bool = False,
        poll_timeout_ms: int = 200,
        fetch_max_wait_ms: int = 100,
        priority: LivePriority | None = None,
        bulk: bool = False,
    ) -> None:
        self.group_id = group_id
        self.topics = list(topics)
        self.bootstrap = bootstrap
        self.sessions = sessions
        if handler is None and batch_handler is None:
            raise ValueError("ConsumerRunner needs a handler or a batch_handler")
        self.processed = processed
        # One statement records the positions and claims the events, its text the same for any batch
        # size (see shared.messaging.claims). 位置与去重登记一条语句，语句文本与批量无关。
        self._claim = BatchClaim(group_id=group_id, processed=processed)
        #: Where the group is in each partition, and the log it was read in. 消费组在各分区的位置与日志纪元。
        self._positions = GroupPositions(group_id=group_id, sessions=sessions, processed=processed, claim=self._claim)
        self._commits = OffsetCommits(group_id=group_id)
        self.handler = handler
        self.batch_handler = batch_handler
        self.publisher = publisher
        self.metrics = metrics
        self.max_batch = max_batch
        self.max_attempts = max_attempts
        self.unit_of_work: Callable[[], UnitOfWork] = unit_of_work or (lambda: UnitOfWork(self.sessions))
        self.client_id = client_id or group_id
        if concurrent_partitions and partitions_together:
            raise ValueError("concurrent_partitions and partitions_together exclude each other")
        self.concurrent_partitions = concurrent_partitions
        self.partitions_together = partitions_together
        self.priority = priority
        self.bulk = bulk
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
        #: For readiness: last batch applied (monotonic time) and records behind per partition.
        self.last_progress = time.monotonic()
        self.lag: dict[TopicPartition, int] = {}

    @property
    def rewinds(self) -> int:
        """Partitions read again from their beginning (a log the broker lost). 因日志丢失而从头重读的次数。"""
        return self._positions.rewinds

    # -- lifecycle
    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name=f"consumer:{self.group_id}")

    async def stop(self) -> None:
        """Finish the batch in hand (applied and committed), leave the group, close. With the broker
        already gone the offsets stay uncommitted and the next run re-reads (deduplicated); nothing
        is raised. 完成在途批次并提交后退出；代理已不在时不抛错（下次重读并去重）。"""
        self._stopping.set()
        try:
            await stop_task(self._task, 30)
        except Exception as exc:
            log.warning("consumer stopped with an error", consumer=self.group_id, error=repr(exc))

    async def _run_forever(self) -> None:
        backoff = Backoff(initial=0.5, maximum=10)
        while not self._stopping.is_set():
            try:
                await self._run_once()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker gone, coordinator lost…: reconnect with back-off
                log.warning("consumer restarting", consumer=self.group_id, error=repr(exc))
                if self.metrics:
                    self.metrics.broker_up.set(0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff.failed())

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
                    if self.partitions_together:
                        await self._process(consumer, {tp: records for tp, records in batches.items() if records})
                    else:
                        for tp, records in batches.items():
                            if self._stopping.is_set() and not records:
                                break
                            await self._process(consumer, {tp: records})
                    self._update_lag(consumer, batches)
        finally:
            self.running = False
            with contextlib.suppress(Exception):
                await self._drain()
            await self._commits.flush()  # the last offsets reach the broker before the consumer closes
            self._commits.forget()
            self._draining = False
            self._consumer = None
            await _close_quietly(consumer)

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
                busy[tp] = asyncio.create_task(self._process(consumer, {tp: records}))
                self._partition_sizes[tp] = len(records)
        self._update_lag(consumer, batches)

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Before hand-over: the in-flight batches are applied and their offsets committed. 移交前完成在途批次。"""
        async with self._inflight:
            await self._drain()
            await self._commits.flush()
            log.info("partitions revoked", consumer=self.group_id, partitions=sorted(map(str, revoked)))

    async def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """On assignment: resume each partition where PostgreSQL says the group is. 分配后从记录的位置继续。

        Nothing is read from the new partitions before their positions are decided: they stay paused
        while the batch polled before the rebalance (if any) is applied and its position recorded, and
        while the positions are read back. Otherwise the fetcher, which starts at the broker's commit
        (or the earliest offset, where the broker forgot it), could hand over records the group applied
        already — deduplicated, but read twice — and a batch applied after the positions were read
        would be read again. 位置确定之前新分区保持暂停：先让再均衡前取到的批次处理完并记录位置，再读回位置。
        """
        consumer = self._consumer
        if consumer is not None:
            consumer.pause(*assigned)
        try:
            async with self._inflight:
                await self._drain()
                await self._positions.resume(self._consumer, assigned)
        finally:
            self._draining = False
            if consumer is not None:
                for tp in assigned & consumer.assignment():  # a rebalance meanwhile assigns afresh
                    consumer.resume(tp)
        log.info("partitions assigned", consumer=self.group_id, partitions=sorted(map(str, assigned)))

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

    # -- processing
    async def _process(self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Apply a poll's records of ``batches`` (one partition, or all of a poll's together) in one
        transaction, behind the lane's priority gate. 在一个事务中处理（单个分区，或一次拉取的全部分区）。"""
        if self.priority is None:
            await self._check_and_apply(consumer, batches)
        elif self.bulk:  # a bulk batch starts only when no live batch is in hand 批量批次让实时批次先行
            await self.priority.before_bulk_batch()
            await self._check_and_apply(consumer, batches)
        else:
            async with self.priority.live_batch():
                await self._check_and_apply(consumer, batches)

    async def _check_and_apply(
        self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        applying: dict[TopicPartition, list[ConsumerRecord]] = {}
        for tp, records in batches.items():
            if self._positions.epochs.check(tp, records).action == "rewind":
                await self._positions.rewind(consumer, tp)
            else:
                applying[tp] = records
        if applying:
            await self._apply_and_commit(consumer, applying)

    async def _apply_and_commit(
        self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        decoded: list[tuple[ConsumerRecord, EventEnvelope[Any]]] = []
        for records in batches.values():
            for record in records:
                try:
                    decoded.append((record, decode_envelope(record.value)))
                except ContractError as exc:
                    await self._dead_letter(record, f"contract: {exc}")
        # The positions are recorded in the batch's own transaction: what PostgreSQL says was applied
        # and where the group resumes can never disagree (a stop between the two would otherwise
        # re-read the batch; deduplicated, but counted twice). 位置与批处理同一事务记录。
        positions: list[tuple[TopicPartition, int]] = []
        for tp, records in batches.items():
            self._positions.epochs.applied(tp, records)
            positions.append((tp, records[-1].offset + 1))
        with_position = True
        while True:
            try:
                await self._apply_all(decoded, positions=positions)
                break
            except Exception as exc:
                if is_database_unavailable(exc):
                    log.warning("database unavailable; will retry batch", consumer=self.group_id, error=repr(exc))
                    await asyncio.sleep(1.0)
                    continue
                log.warning("batch failed; applying one by one", consumer=self.group_id, error=repr(exc))
                await self._apply_one_by_one(decoded)
                with_position = False
                break
        self.last_progress = time.monotonic()
        if not with_position:
            await self._positions.save(*positions)
        self._commits.add(consumer, dict(positions))

    async def _apply_all(
        self,
        items: list[tuple[ConsumerRecord, EventEnvelope[Any]]],
        *,
        positions: Sequence[tuple[TopicPartition, int]] = (),
    ) -> None:
        """Apply ``items`` once each in one transaction, recording ``positions`` in it too."""
        if not items and not positions:
            return
        todo: list[tuple[ConsumerRecord, EventEnvelope[Any]]] = []
        async with self.unit_of_work() as uow:
            fresh = await self._claim.record(
                uow.session, positions=self._positions.positions(*positions), event_ids=[env.id for _, env in items]
            )
            for record, env in items:
                if env.id not in fresh:
                    self._count(record.topic, "duplicate")
                    self.duplicates += 1
                else:
                    fresh.discard(env.id)  # twice in one batch: the second is a duplicate 同批重复
                    todo.append((record, env))
            await self._handle(uow, [env for _, env in todo])
        for record, _ in todo:
            self._count(record.topic, "applied")
            self.applied += 1

    async def _handle(self, uow: UnitOfWork, envelopes: list[EventEnvelope[Any]]) -> None:
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
                await self.batch_handler(uow, envelopes)
            finally:
                clear_correlation()
            return
        assert self.handler is not None
        for env in envelopes:
            bind_correlation(correlation_id=env.correlation_id, event_id=str(env.id))
            try:
                await self.handler(uow, env)
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

    async def _record_outcome(self, env: EventEnvelope[Any], outcome: str) -> None:
        async with UnitOfWork(self.sessions) as uow:
            await uow.session.execute(
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
