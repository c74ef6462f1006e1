"""Transactional outbox (发件箱): events leave a service only through here, and PostgreSQL keeps
each one until every consumer has it — the broker only carries it.

A service writes its state change, an outbox row and a *pending* marker in the same database
transaction (:func:`add_events`). The :class:`OutboxRelay` publishes pending rows to Kafka in id
order and waits for the broker's ack (acks=all). The ack does not delete the row: the pending
marker goes, and the row is *retained* with the partition and offsets the broker gave it
(``outbox_published``, one record per partition per batch) until every consumer group of its
topic has committed past them (see :mod:`shared.messaging.retention`), so a broker that forgets
(Tansu keeps everything in memory; a Kafka disk can be lost) is refilled from PostgreSQL.

Every record carries its partition's *log epoch* (header ``log_epoch``), a token the relay keeps
per partition in ``outbox_partitions`` and renews when it finds the broker's log of that
partition was lost: an ack at an offset not above the last one recorded, or (checked
periodically by the retention keeper) the record at a recorded offset gone or different. Then
the partition's retained rows become pending again and are republished in their original order.
Consumers commit the epoch with their offsets, which tells a commit made against the lost log
from one made against the new one (:class:`shared.messaging.consumer.ConsumerRunner`).

Several replicas each run a relay; a transaction-scoped advisory lock lets one of them publish
at a time, so a key's events reach Kafka in the order they were written; the lock is all the
claim needs (no row locks, which would write every claimed row once more). A crash between ack
and commit republishes the batch; consumers deduplicate by event id. The broker being down only grows the backlog
(``outbox_backlog`` on ``/metrics``); nothing is lost.
发件箱：业务变更、发件箱行与待发标记同一事务写入；中继按序发布，代理确认后行并不删除，而是连同分区与
偏移保留，直至所有消费组提交越过它；代理丢失数据时从 PostgreSQL 按原顺序重发。
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    Table,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.cooperative import cooperative_map
from shared.db import driver_connection
from shared.events import LANES, EventEnvelope, topic_lane
from shared.logging import get_logger
from shared.messaging.background import Backoff, stop_task
from shared.messaging.epochs import LOG_EPOCH_HEADER, new_epoch
from shared.messaging.outbox_tables import KEYED_READS
from shared.messaging.publisher import KafkaPublisher
from shared.messaging.upkeep import QueueUpkeep
from shared.observability import PlatformMetrics

if TYPE_CHECKING:
    from shared.messaging.retention import RetentionKeeper

log = get_logger(__name__)


def outbox_row(topic: str, envelope: EventEnvelope[Any], *, data_json: str | None = None) -> dict[str, Any]:
    """One outbox row; ``data_json`` is the payload already serialised, if the caller has it."""
    return {
        "event_id": envelope.id,
        "topic": topic,
        "event_type": envelope.type,
        "key": envelope.subject,
        "value": envelope.to_bytes(data_json=data_json),
        "headers": envelope.header_pairs(),
    }


#: A relay that found its lane's lock held tries again after this long, doubling up to its poll.
#: 通道锁被占用时的首次重试间隔（秒），此后翻倍，至多一个轮询间隔。
STANDBY_RETRY_S = 0.01
#: The outbox columns :func:`outbox_arrays` fills, and their array types for ``unnest``.
OUTBOX_COLUMNS = ("event_id", "topic", "event_type", "key", "value", "headers")
OUTBOX_ARRAY_TYPES = ("uuid[]", "text[]", "text[]", "text[]", "bytea[]", "jsonb[]")


def outbox_arrays(topic: str, envelopes: Sequence[EventEnvelope[Any]]) -> list[list[Any]]:
    """Column-wise arrays of outbox rows (for ``unnest``: one statement whatever the count).

    发件箱行按列组成数组，供 ``unnest`` 一条语句批量写入。"""
    return _columns([outbox_row(topic, e) for e in envelopes])


async def outbox_arrays_cooperatively(
    topic: str, envelopes: Sequence[EventEnvelope[Any]], *, data_json: Sequence[str] | None = None
) -> list[list[Any]]:
    """:func:`outbox_arrays` for large batches on a busy event loop (yields between slices);
    ``data_json``: the payloads already serialised, one per envelope."""
    if data_json is None:
        return _columns(await cooperative_map(lambda e: outbox_row(topic, e), envelopes))
    pairs = list(zip(envelopes, data_json, strict=True))
    return _columns(await cooperative_map(lambda pair: outbox_row(topic, pair[0], data_json=pair[1]), pairs))


def _columns(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [r["event_id"] for r in rows],
        [r["topic"] for r in rows],
        [r["event_type"] for r in rows],
        [r["key"] for r in rows],
        [r["value"] for r in rows],
        [orjson.dumps(r["headers"]).decode() for r in rows],
    ]


def queue_events_sql(table: Table, topic: str, *, name: str = "queued", prefix: str = "a", cases_in: str = "") -> str:
    """The two ``WITH`` items that queue events of ``topic`` from one array per column (parameters
    ``<prefix>0`` … ``<prefix>5``, see :func:`outbox_params`): ``<name>`` inserts the outbox rows in
    array order, ``<name>_pending`` puts them on the topic's lane's pending list (``RETURNING id``).
    ``cases_in``: a subquery of case ids; only the events whose case (parameter ``<prefix>_case``, one
    per event) is among them are queued — so a statement that inserts cases can queue the events of
    those it inserted, in the same round trip. 入队发件箱的两个 WITH 子句（按数组顺序写入并加入待发）；
    ``cases_in`` 时只入队其案件在该子查询中的事件（与插入案件同一语句）。"""
    schema = table.schema
    casts = [f"CAST(:{prefix}{i} AS {t})" for i, t in enumerate(OUTBOX_ARRAY_TYPES)]
    names = list(OUTBOX_COLUMNS)
    where = ""
    if cases_in:
        casts.append(f"CAST(:{prefix}_case AS uuid[])")
        names.append("case_id")
        where = f"WHERE u.case_id IN ({cases_in}) "
    columns = ", ".join(OUTBOX_COLUMNS)
    return (
        f'{name} AS (INSERT INTO "{schema}".outbox ({columns}) '
        f"SELECT {', '.join(f'u.{c}' for c in OUTBOX_COLUMNS)} FROM unnest({', '.join(casts)}) WITH ORDINALITY "
        f"AS u({', '.join(names)}, ord) {where}ORDER BY u.ord ON CONFLICT (event_id) DO NOTHING RETURNING id), "
        f'{name}_pending AS (INSERT INTO "{schema}".outbox_pending (id, lane) '
        f"SELECT id, {topic_lane(topic)} FROM {name} RETURNING id)"
    )


def outbox_params(arrays: list[list[Any]], *, prefix: str = "a", cases: Sequence[Any] | None = None) -> dict[str, Any]:
    """The parameters of :func:`queue_events_sql` (``arrays`` from :func:`outbox_arrays`; ``cases``: the
    case of each event, with ``cases_in``). 入队语句的参数。"""
    params: dict[str, Any] = {f"{prefix}{i}": column for i, column in enumerate(arrays)}
    if cases is not None:
        params[f"{prefix}_case"] = list(cases)
    return params


async def add_events(session: AsyncSession, table: Table, topic: str, envelopes: Sequence[EventEnvelope[Any]]) -> int:
    """Write events to the outbox (and its pending queue) inside the caller's transaction.

    Idempotent on the event id while the event is kept. A consumer that replays its input
    publishes nothing twice because its own processed-message key (and the event's deterministic
    id) stop it first; consumers downstream deduplicate by event id. Returns rows added.
    """
    if not envelopes:
        return 0
    # One statement whatever the batch size: arrays unnested server-side (no per-row binds).
    result = await session.execute(
        text(f"WITH {queue_events_sql(table, topic)} SELECT id FROM queued_pending"),
        outbox_params(outbox_arrays(topic, envelopes)),
    )
    return len(result.all())


@dataclass
class PartitionLog:
    """The relay's view of one partition's log: its epoch and the last offset the broker acked."""

    epoch: str
    last_offset: int


class OutboxRelay:
    """Publishes the outbox to Kafka and keeps what it published until consumed. Every replica runs
    one; per lane (实时 / 批量导入) one replica at a time holds that lane's relay lock and publishes
    (in id order, so a key's events keep their order), the others stand by.
    发件箱中继：按通道各自按序发布并保留至被消费；多副本时每个通道同一时刻一个发布。

    Each lane is its own loop with its own lock: a live event waits for at most the live batch in
    flight, never for an import's backlog. The lanes publish to disjoint topics (a topic belongs
    to one lane, :attr:`shared.events.TopicSpec.lane`), so each partition's log state has one
    writer and a key's events, all in one topic, keep their order. ``lanes``: the lanes this
    process relays (a history-import process may take the bulk lane only).
    每个通道一个循环、一把锁：实时事件最多等待一个在途的实时批次；通道的主题互不相交，分区日志状态
    只有一个写者，同键事件同在一个主题内保持顺序。
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        table: Table,
        publisher: KafkaPublisher,
        metrics: PlatformMetrics | None = None,
        batch_size: int = 1000,
        poll_interval_s: float = 0.5,
        linger_s: float = 0.005,
        keeper: RetentionKeeper | None = None,
        keep_interval_s: float = 2.0,
        vacuum_interval_s: float = 30.0,
        lanes: Sequence[str] = LANES,
    ) -> None:
        self.engine = engine
        self.table = table
        self.publisher = publisher
        self.metrics = metrics
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.linger_s = linger_s
        self.keeper = keeper
        self.keep_interval_s = keep_interval_s
        #: Vacuums the queue tables (:mod:`shared.messaging.upkeep`). 队列表清理。
        self.upkeep = QueueUpkeep(engine=engine, schema=table.schema or "public", interval_s=vacuum_interval_s)
        #: The lane numbers this relay publishes (``outbox_pending.lane``). 本中继发布的通道编号。
        self.lanes: tuple[int, ...] = tuple(LANES.index(lane) for lane in lanes)
        self._wake = {lane: asyncio.Event() for lane in self.lanes}
        #: The lanes whose last round found another relay holding the lane's lock. 上一轮锁被占用的通道。
        self.standing_by: set[int] = set()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._kept_at = {lane: 0.0 for lane in self.lanes}
        self.published = 0
        self.republished = 0
        self._errors: dict[int, str] = {}
        schema = f'"{table.schema}"'
        # One relay of a service publishes a lane at a time (a transaction-scoped advisory lock
        # taken in the claim itself): two claiming side by side would each hold a run of ids, and
        # the later run could reach Kafka first — a case's events out of order. The others stand by
        # and try again soon (10 ms, doubling up to the poll): rows one of them committed after the
        # holder's claim would otherwise wait for its next poll (half a second by default) — every
        # time a dispatch API process and its live worker, or two replicas, share a lane.
        # 同一服务每个通道同一时刻只有一个中继在发布（事务级咨询锁），保证同键事件顺序；其余中继稍后
        # 重试（10 毫秒起翻倍，至多一个轮询间隔），否则持锁者认领之后提交的行要等下一次轮询。
        #: Each lane's relay lock (the live lane's is the key of the relay before lanes). 各通道的中继锁。
        self.lock_keys: dict[int, int] = {
            lane: zlib.crc32(f"outbox-relay:{table.schema}{'' if lane == 0 else f':{LANES[lane]}'}".encode())
            for lane in range(len(LANES))
        }
        # The lock is its own statement, before the claim: the claim's snapshot is then taken after
        # the lock is held, so it sees the pending rows the previous holder cleared (a lock taken
        # inside the claim comes after the claim's snapshot, and a batch published by the holder
        # that just committed would be claimed again). A standby relay stops at the lock.
        # 先单独取锁再认领：认领的快照晚于取锁，看得到上一持锁者已清除的待发行（锁若在认领语句内取得，
        # 快照早于取锁，刚提交的一批会被再次认领）。备用中继在取锁处即停止。
        #
        # The relay's own transaction commits without waiting for its WAL flush (``synchronous_commit``
        # off for this transaction only, set in the lock statement: no round trip of its own). What it
        # records is only where published rows went: were a database crash to lose the last commit,
        # those rows would be pending again and published once more, which every consumer skips by
        # event id. The events themselves were committed, durably, by the transaction that wrote them.
        # 中继事务提交不等待 WAL 落盘（仅本事务）：它只记录已发布行的去向；若数据库崩溃丢失最后一次提交，
        # 这些行重新待发、再发布一次，消费方按事件 id 去重。事件本身已由写入它的事务持久提交。
        #
        # Seq scans are off for the transaction too (:data:`KEYED_READS`): every statement of the relay
        # reads its queue tables by key.
        #: The relay's first statement in each transaction: the lane's lock and the settings. 每个事务的首条语句。
        self.lock_sql = (
            "SELECT pg_try_advisory_xact_lock($1), set_config('synchronous_commit', 'off', true), " + KEYED_READS
        )
        # The claim reads the first pending ids in order, then each one's row by its key: a plan whose
        # cost follows the batch, never the table. Written as a join, PostgreSQL may hash-join the pending
        # ids against a scan of the whole outbox — every retained row, whose count grows with a consumer's
        # lag — when the plan was made on a small outbox: the connection's prepared statement keeps the
        # generic plan it made at startup, on an empty outbox, for the whole import (8–40 ms per claim in a
        # history import, rising with it). ``OFFSET 0`` keeps the per-row lookup a subquery of its own (not
        # flattened into a join).
        # 认领：先按序取待发行号，再逐行按主键取行——开销随批量而非表大小；写成连接时，启动时在空发件箱上
        # 缓存的通用计划会以哈希连接扫描整个发件箱（保留行随消费滞后增长）。
        #
        # The same statement returns the broker's log state per partition (rows with no id, after the
        # claimed ones; only when something was claimed): it was a round trip of its own, on every
        # batch of every lane, and on a busy machine each round trip waits for the CPU on both sides.
        # Read after the lock like the claim, so it is what the previous holder left.
        # 同一语句一并返回各分区的日志状态（无行号的行，排在认领行之后；仅在有认领时）：省去每批一次往返。
        self._claim_sql = {
            lane: f"WITH claimed AS (SELECT p.id, o.topic, o.key, o.value, o.headers "
            f"FROM (SELECT id FROM {schema}.outbox_pending WHERE lane = {lane} ORDER BY id LIMIT $1) p "
            f"CROSS JOIN LATERAL (SELECT topic, key, value, headers FROM {schema}.outbox WHERE id = p.id OFFSET 0) o) "
            "SELECT id, topic, key, value, headers, NULL::int AS partition, NULL::text AS epoch, "
            "NULL::bigint AS last_offset FROM claimed "
            "UNION ALL SELECT NULL, topic, NULL, NULL, NULL, partition, epoch, last_offset "
            f"FROM {schema}.outbox_partitions WHERE EXISTS (SELECT FROM claimed) "
            "ORDER BY id NULLS LAST"
            for lane in self.lock_keys
        }
        # Where a batch went, in one statement (one round trip, however many partitions it reached):
        # a record per partition of the ids in offset order, each partition's log state, and the
        # rows off the pending list. On a busy machine each round trip waits for the CPU twice (here
        # and in the database), and a live event waits for the batch in flight.
        # 一批的去向一条语句记完（无论涉及几个分区都只一次往返）：各分区按偏移排列的行号、分区日志状态、移出待发。
        # The pending rows go by their ids' range in the lane (the batch was the lane's first ids), then
        # ``id = ANY`` of those sent: a plan made while the lane looked empty nested-looped the lane's
        # whole backlog against ``placed`` (up to 31 s a statement in a 100 k replay), and an ``= ANY``
        # alone was checked as a filter over the whole lane. A range is always an index bound.
        # 待发行按本批行号范围（索引边界）再按所发行号删除：空表时的计划曾读过整个通道积压。
        state_upsert = (
            "ON CONFLICT (topic, partition) DO UPDATE SET epoch = EXCLUDED.epoch, last_offset = EXCLUDED.last_offset, "
            f"since = CASE WHEN {schema}.outbox_partitions.epoch = EXCLUDED.epoch "
            f"THEN {schema}.outbox_partitions.since ELSE now() END"
        )
        self.placed_sql = (
            "WITH placed AS (SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[], $5::text[]) "
            "AS p(topic, partition, at, id, epoch)), "
            f"recorded AS (INSERT INTO {schema}.outbox_published (topic, partition, first_offset, last_offset, "
            "outbox_ids) SELECT topic, partition, min(at), max(at), array_agg(id ORDER BY at) FROM placed "
            "GROUP BY topic, partition), "
            f"logged AS (INSERT INTO {schema}.outbox_partitions (topic, partition, epoch, last_offset) "
            f"SELECT topic, partition, min(epoch), max(at) FROM placed GROUP BY topic, partition {state_upsert}) "
            f"DELETE FROM {schema}.outbox_pending WHERE lane = $6 AND id = ANY($4::bigint[]) "
            "AND id BETWEEN (SELECT min(i) FROM unnest($4::bigint[]) i) AND (SELECT max(i) FROM unnest($4::bigint[]) i)"
        )
        self._state_upsert_sql = (
            f"INSERT INTO {schema}.outbox_partitions (topic, partition, epoch, last_offset) VALUES ($1, $2, $3, $4) "
            + state_upsert
        )
        self._requeue_sql = (
            f"WITH gone AS (DELETE FROM {schema}.outbox_published WHERE topic = $1 AND partition = $2 "
            "RETURNING outbox_ids) "
            f"INSERT INTO {schema}.outbox_pending (id, lane) SELECT unnest(outbox_ids), $3 FROM gone "
            "ON CONFLICT (lane, id) DO NOTHING RETURNING id"
        )

    def claim_sql(self, lane: int) -> str:
        """The claim of ``lane`` (``$1``: the batch size): the claimed rows in id order, then (if any
        were claimed) one row per partition of the broker's log state, with no id. 通道的认领语句
        （认领行按序，其后为各分区日志状态行）。"""
        return self._claim_sql[lane]

    @property
    def last_error(self) -> str | None:
        """The last failure of any lane's loop, until that loop succeeds again. 最近一次失败。"""
        return next(iter(self._errors.values()), None)

    async def requeue(self, conn: Any, topic: str, partition: int) -> list[Any]:
        """Make a partition's retained rows pending again, in its topic's lane (its log was lost).
        分区日志丢失：保留行重新待发（仍在该主题的通道）。"""
        return list(await conn.fetch(self._requeue_sql, topic, partition, topic_lane(topic)))

    def wake(self) -> None:
        """Tell the relay new rows were committed (saves waiting for the next poll)."""
        for event in self._wake.values():
            event.set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.run(lane), name=f"outbox-relay:{self.table.schema}:{LANES[lane]}")
            for lane in self.lanes
        ]
        self._tasks.append(
            asyncio.create_task(self.upkeep.run(self._stopping), name=f"outbox-upkeep:{self.table.schema}")
        )

    async def stop(self) -> None:
        self._stopping.set()
        self.wake()
        for task in self._tasks:
            await stop_task(task, 20)
        if self.keeper is not None:
            await self.keeper.close()

    async def run(self, lane: int = 0) -> None:
        """One lane's loop: publish while rows wait, else sleep until woken or the poll. 单个通道的发布循环。"""
        wake = self._wake[lane]
        backoff = Backoff(initial=self.poll_interval_s, maximum=5.0)
        standby = Backoff(initial=min(STANDBY_RETRY_S, self.poll_interval_s), maximum=self.poll_interval_s)
        wait = backoff.initial
        while not self._stopping.is_set():
            # Cleared before the claim, not after: a commit that wakes the relay while it is
            # publishing is not lost (it would otherwise wait for the next poll).
            # 在认领之前清除唤醒标志：发布期间到来的提交唤醒不会丢失。
            wake.clear()
            try:
                sent = await self._relay_lane(lane)
                self._errors.pop(lane, None)
                backoff.reset()
                wait = backoff.initial
                await self._keep_if_due(lane)
                if sent >= self.batch_size:
                    continue  # more waiting: go on without sleeping
                if lane in self.standing_by:
                    wait = standby.failed()  # another relay holds the lane: try again soon 另一中继持锁：稍后重试
                else:
                    standby.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._errors[lane] = f"{type(exc).__name__}: {exc}"
                if self.metrics:
                    self.metrics.outbox_errors.inc()
                wait = backoff.failed()
                log.warning(
                    "outbox relay failed; backing off", lane=LANES[lane], error=self._errors[lane], backoff_s=wait
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), wait)
                # Woken by a commit: linger a moment so one batch carries many requests' events.
                await asyncio.sleep(self.linger_s)

    async def _keep_if_due(self, lane: int) -> None:
        """Every ``keep_interval_s``: check the broker still holds what this lane published, and let
        go of what every consumer has. 定期核对代理日志并释放已被全部消费的行（按通道）。"""
        if self.keeper is None or self._stopping.is_set():
            return
        now = time.monotonic()
        if now - self._kept_at[lane] < self.keep_interval_s:
            return
        self._kept_at[lane] = now
        requeued = await self.keeper.keep_once(self, lane=lane)
        if requeued:
            self.republished += requeued
            await self.publisher.reconnect()
            self.wake()

    async def relay_once(self, lane: int | None = None) -> int:
        """Publish one batch of ``lane`` (of every lane this relay has, one after the other, when
        None); returns the rows claimed. 发布一批（未指定通道时依次发布各通道）。"""
        if lane is not None:
            return await self._relay_lane(lane)
        return sum([await self._relay_lane(each) for each in self.lanes])

    async def _relay_lane(self, lane: int) -> int:
        """Publish one batch of ``lane``: claim (under the lane's relay lock) → send → await acks →
        record where each row went (or, for a partition whose log the broker lost, requeue its
        retained rows) → commit.

        On the driver connection (asyncpg directly): the relay is on every service's hot path and
        SQLAlchemy's per-row result processing would cost more than the claim itself.
        """
        async with driver_connection(self.engine) as conn, conn.transaction():
            if not await conn.fetchval(self.lock_sql, self.lock_keys[lane]):
                self.standing_by.add(lane)
                return 0  # another replica is publishing this lane 其他副本正在发布该通道
            self.standing_by.discard(lane)
            claimed = await conn.fetch(self.claim_sql(lane), self.batch_size)
            rows = [r for r in claimed if r["id"] is not None]
            if not rows:
                return 0
            logs = {
                (r["topic"], r["partition"]): PartitionLog(r["epoch"], r["last_offset"])
                for r in claimed[len(rows):]
            }
            epochs: dict[tuple[str, int], str] = {}

            def epoch_header(topic: str, partition: int) -> list[tuple[str, bytes]]:
                known = logs.get((topic, partition))
                epochs[topic, partition] = known.epoch if known else new_epoch()
                return [(LOG_EPOCH_HEADER, epochs[topic, partition].encode())]

            started = time.perf_counter()
            positions = await self.publisher.send_batch(
                [
                    (
                        r["topic"],
                        r["key"].encode() if r["key"] else None,
                        r["value"],
                        [(k, v.encode()) for k, v in r["headers"]],
                    )
                    for r in rows
                ],
                extra_headers=epoch_header,
            )
            if self.metrics:
                self.metrics.produce_latency.observe(time.perf_counter() - started)
            placed: dict[tuple[str, int], list[tuple[int, int]]] = {}
            for row, (partition, offset) in zip(rows, positions, strict=True):
                placed.setdefault((row["topic"], partition), []).append((offset, row["id"]))
            done: list[tuple[str, int, int, int]] = []  # topic, partition, offset, row id
            for (topic, partition), items in placed.items():
                items.sort()
                known = logs.get((topic, partition))
                last = items[-1][0]
                if known is not None and items[0][0] <= known.last_offset:
                    # The broker gave an offset we already had: this partition's log is a new one.
                    # Everything retained for it goes out again (this batch too, under a new epoch).
                    # 代理给出的偏移不大于已记录的：该分区日志已丢失，保留行连同本批以新纪元重发。
                    requeued = await self.requeue(conn, topic, partition)
                    log.warning(
                        "broker lost a partition's log; republishing what it held",
                        topic=topic, partition=partition, offset=items[0][0], recorded=known.last_offset,
                        republishing=len(requeued) + len(items),
                    )
                    self.republished += len(requeued)
                    await conn.execute(self._state_upsert_sql, topic, partition, new_epoch(), last)
                    continue
                done.extend((topic, partition, offset, row_id) for offset, row_id in items)
            if done:
                await conn.execute(
                    self.placed_sql,
                    *(list(column) for column in zip(*done, strict=True)),
                    [epochs[topic, partition] for topic, partition, _, _ in done],
                    lane,
                )
        self.published += len(done)
        if len(done) < len(rows):  # a partition's log was lost: new producer, topics made again
            await self.publisher.reconnect()
        if self.metrics:
            for topic in {r["topic"] for r in rows}:
                self.metrics.outbox_published.labels(topic).inc(sum(1 for r in rows if r["topic"] == topic))
        if len(done) < len(rows):
            self.wake()
        return len(rows)

    async def backlog(self) -> int:
        """Events waiting to be published (pending). 待发布事件数。"""
        schema = self.table.schema
        async with self.engine.connect() as conn:
            n = (await conn.execute(text(f'SELECT count(*) FROM "{schema}".outbox_pending'))).scalar_one()
        if self.metrics:
            self.metrics.outbox_backlog.set(n)
        return int(n)

    async def retained(self) -> int:
        """Published events kept until every consumer has them. 已发布、待全部消费后释放的事件数。"""
        schema = self.table.schema
        async with self.engine.connect() as conn:
            n = (
                await conn.execute(
                    text(f'SELECT coalesce(sum(cardinality(outbox_ids)), 0) FROM "{schema}".outbox_published')
                )
            ).scalar_one()
        if self.metrics:
            self.metrics.outbox_retained.set(n)
        return int(n)
