"""Retention of published outbox rows (留存): PostgreSQL is the log of record, the broker only carries it.

A published row stays in its service's outbox until every consumer group of its topic has
committed past the offset the broker gave it (:data:`shared.events.TOPICS` names the groups);
topics read only by per-replica groups keep their rows for ``OUTBOX_RETENTION_S``. The
:class:`RetentionKeeper` runs inside the relay's loop every few seconds and does two things:

1. **Checks that the broker still holds what was published.** For each partition with retained
   rows it reads the record at the highest recorded offset: gone (offset out of range, partition
   or topic missing) or a different event there means the broker lost that partition's log (a
   Tansu restart forgets everything; a Kafka disk can be lost). The partition's retained rows
   become pending again and the relay republishes them in their original order, under a new
   log epoch. A broker that cannot be reached proves nothing either way: nothing changes.
2. **Lets go of what every consumer has**: rows below every group's committed offset, in a
   partition just read back whole, whose epoch is older than a grace period (see
   :func:`releasable_before`: a commit in flight when the broker restarted can land in the new log).

Network calls happen first; the database changes follow in one short transaction that holds the
relay's advisory lock and re-checks each partition's epoch, so a standby replica never acts.
留存：已发布行保留至所有消费组（按当前日志纪元）提交越过其偏移；定期核对代理是否仍持有已发布记录，
丢失则按原顺序重发。
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import OffsetOutOfRangeError

from shared.db import driver_connection
from shared.events import TOPICS, topic_lane
from shared.logging import get_logger
from shared.messaging.epochs import EVENT_ID_HEADER, header, new_epoch
from shared.messaging.outbox_tables import KEYED_READS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from shared.messaging.outbox import OutboxRelay

log = get_logger(__name__)

Verdict = Literal["intact", "lost", "unknown"]


@dataclass(frozen=True)
class Retained:
    """A partition with retained rows: its epoch and the newest published record (offset, event id)."""

    topic: str
    partition: int
    epoch: str
    last_offset: int
    last_event_id: str
    #: Seconds since this partition's epoch began (the log was new, or found lost).
    epoch_age_s: float


def releasable_before(retained: Retained, verdict: Verdict, commits: list[int | None], grace_s: float) -> int:
    """The offset below which every consumer group has the partition's rows (pure); 0: none.

    Only a log just read back whole counts (``intact``), and only once its epoch is older than
    ``grace_s``: a consumer's commit in flight when the broker restarted can land in the new log
    (Tansu takes it) and claim offsets the group has not read there; its own next commits replace
    it within seconds. A commit beyond what was published is such a commit too. A group with no
    commit holds everything back. 仅在日志完整、纪元已超过宽限期时按各组提交的最小偏移释放。
    """
    if verdict != "intact" or retained.epoch_age_s < grace_s or not commits:
        return 0
    if any(c is None or c < 0 or c > retained.last_offset + 1 for c in commits):
        return 0
    return min(c for c in commits if c is not None)


def judge(retained: Retained, offset: int | None, event_id: str | None) -> Verdict:
    """Whether the broker still holds the newest retained record (pure): ``offset`` and
    ``event_id`` are what it returned when asked for ``retained.last_offset``; ``None`` offset:
    out of range or missing partition. 代理是否仍持有最新保留记录。"""
    if offset is None:
        return "lost"
    return "intact" if offset == retained.last_offset and event_id == retained.last_event_id else "lost"


class RetentionKeeper:
    """Checks the broker against the outbox's record and releases consumed rows; see the module."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        schema: str,
        bootstrap: str,
        retention_s: float,
        fetch_timeout_s: float = 3.0,
        grace_s: float = 30.0,
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.bootstrap = bootstrap
        self.retention_s = retention_s
        self.fetch_timeout_s = fetch_timeout_s
        self.grace_s = grace_s
        self._reader: AIOKafkaConsumer | None = None
        #: What the last check found per partition (for the log). 最近一次核对所见。
        self.findings: dict[tuple[str, int], str] = {}
        self._silent: dict[tuple[str, int, int], int] = {}
        self._admin: AIOKafkaAdminClient | None = None
        self._one_at_a_time = asyncio.Lock()
        s = f'"{schema}"'
        #: The newest retained record of every partition, with its last row's event id. 各分区最新保留记录。
        # Per partition its latest record (a backward probe of ix_outbox_published_topic) and that
        # record's last row: a dozen lookups whatever the consumers' lag. Written as DISTINCT ON over
        # every record, it joined each retained batch's row first — 150–190 ms a pass behind a 2 M
        # import's lag. The last row is looked up by key in a lateral subquery of its own (``OFFSET 0``): as
        # a join, a plan made while the outbox looked empty read the whole outbox (3.7 s a pass).
        # 每个分区只取最新一条记录及其末行（末行按键单独查找）：查找次数与消费滞后无关。
        self.retained_sql = (
            "SELECT s.topic, s.partition, p.last_offset, o.event_id::text AS event_id, s.epoch, "
            "extract(epoch FROM now() - s.since)::float8 AS age "
            f"FROM {s}.outbox_partitions s "
            "CROSS JOIN LATERAL (SELECT last_offset, outbox_ids "
            f"FROM {s}.outbox_published p WHERE p.topic = s.topic AND p.partition = s.partition "
            "ORDER BY p.last_offset DESC LIMIT 1) p "
            "CROSS JOIN LATERAL (SELECT event_id "
            f"FROM {s}.outbox o WHERE o.id = p.outbox_ids[cardinality(p.outbox_ids)] OFFSET 0) o "
            "ORDER BY s.topic, s.partition"
        )
        self._epoch_sql = f"SELECT epoch FROM {s}.outbox_partitions WHERE topic = $1 AND partition = $2 FOR UPDATE"
        self._lost_sql = (
            f"UPDATE {s}.outbox_partitions SET epoch = $3, last_offset = -1, since = now() "
            "WHERE topic = $1 AND partition = $2"
        )
        #: Release a partition's consumed records and their outbox rows (``$3``: below this offset), the
        #: rows by key (``id = ANY``), never a join the planner could turn into a scan of the outbox.
        #: 释放分区已消费的记录及其发件箱行（按键删除）。
        self.release_sql = (
            f"WITH gone AS (DELETE FROM {s}.outbox_published WHERE topic = $1 AND partition = $2 "
            "AND last_offset < $3 RETURNING outbox_ids) "
            f"DELETE FROM {s}.outbox WHERE id = ANY(ARRAY(SELECT unnest(outbox_ids) FROM gone))"
        )
        self._expire_sql = (
            f"WITH gone AS (DELETE FROM {s}.outbox_published WHERE NOT (topic = ANY($1::text[])) "
            "AND published_at < now() - make_interval(secs => $2) RETURNING outbox_ids) "
            f"DELETE FROM {s}.outbox WHERE id = ANY(ARRAY(SELECT unnest(outbox_ids) FROM gone))"
        )

    async def close(self) -> None:
        reader, admin, self._reader, self._admin = self._reader, self._admin, None, None
        if reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader.stop(), 5)
        if admin is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(admin.close(), 5)

    async def keep_once(self, relay: OutboxRelay, *, lane: int = 0) -> int:
        """One pass over ``lane``'s topics (under that lane's relay lock): verify, then requeue lost
        partitions and release consumed rows. Returns rows requeued. 按通道核对、重发与释放。"""
        async with self._one_at_a_time:  # the lanes' loops share the reader and the admin client
            return await self._keep_lane(relay, lane)

    async def _keep_lane(self, relay: OutboxRelay, lane: int) -> int:
        async with driver_connection(self.engine) as conn, conn.transaction():
            await conn.execute(f"SELECT {KEYED_READS}")
            retained = [
                Retained(r["topic"], r["partition"], r["epoch"], r["last_offset"], r["event_id"], r["age"])
                for r in await conn.fetch(self.retained_sql)
                if topic_lane(r["topic"]) == lane
            ]
        verdicts: dict[tuple[str, int], Verdict] = {}
        releasable: dict[tuple[str, int], int] = {}
        if retained:
            try:
                verdicts = await self.verify(retained)
                releasable = await self._releasable(retained, verdicts)
            except Exception as exc:  # the broker is away: nothing is proven, nothing changes
                log.info("outbox retention check skipped", error=repr(exc))
                await self.close()
                verdicts, releasable = {}, {}
        return await self._apply(relay, lane, retained, verdicts, releasable)

    async def _apply(
        self,
        relay: OutboxRelay,
        lane: int,
        retained: list[Retained],
        verdicts: dict[tuple[str, int], Verdict],
        releasable: dict[tuple[str, int], int],
    ) -> int:
        requeued = 0
        async with driver_connection(self.engine) as conn, conn.transaction():
            if not await conn.fetchval(f"SELECT pg_try_advisory_xact_lock($1), {KEYED_READS}", relay.lock_keys[lane]):
                return 0  # another replica's relay is publishing; it keeps the outbox
            for r in retained:
                tp = (r.topic, r.partition)
                if verdicts.get(tp) not in ("lost",) and not releasable.get(tp):
                    continue
                if await conn.fetchval(self._epoch_sql, r.topic, r.partition) != r.epoch:
                    continue  # the relay renewed this partition meanwhile
                if verdicts.get(tp) == "lost":
                    rows = await relay.requeue(conn, r.topic, r.partition)
                    await conn.execute(self._lost_sql, r.topic, r.partition, new_epoch())
                    requeued += len(rows)
                    log.warning(
                        "broker no longer holds what was published; republishing",
                        topic=r.topic,
                        partition=r.partition,
                        offset=r.last_offset,
                        republishing=len(rows),
                        expected=r.last_event_id,
                        found=self.findings.get(tp),
                    )
                else:
                    await conn.execute(self.release_sql, r.topic, r.partition, releasable[tp])
            if lane == 0:  # topics without fixed groups are all live ones 无固定消费组的主题都在实时通道
                await conn.execute(
                    self._expire_sql, [t for t, spec in TOPICS.items() if spec.consumer_groups], self.retention_s
                )
        if requeued and relay.metrics:
            relay.metrics.outbox_republished.inc(requeued)
        return requeued

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._reader is None or self._admin is None:
            await self.close()
            reader = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="none",
                metadata_max_age_ms=2000,
                request_timeout_ms=int(self.fetch_timeout_s * 1000) + 2000,
            )
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap, request_timeout_ms=int(self.fetch_timeout_s * 1000)
            )
            try:
                await asyncio.wait_for(reader.start(), self.fetch_timeout_s)
                await asyncio.wait_for(admin.start(), self.fetch_timeout_s)
            except BaseException:
                with contextlib.suppress(Exception):
                    await reader.stop()
                with contextlib.suppress(Exception):
                    await admin.close()
                raise
            self._reader, self._admin = reader, admin
        return self._reader, self._admin

    async def verify(self, retained: list[Retained]) -> dict[tuple[str, int], Verdict]:
        """Read the newest retained record of each partition back from the broker. 回读每个分区的最新保留记录。"""
        reader, admin = await self._clients()
        # Every topic (naming none: a named topic that is missing would be auto-created by Tansu).
        described = await asyncio.wait_for(admin.describe_topics(None), self.fetch_timeout_s)
        partitions_of = {
            t["topic"]: {p["partition"] for p in t["partitions"]} for t in described if not t.get("error_code")
        }
        verdicts: dict[tuple[str, int], Verdict] = {}
        present: list[Retained] = []
        for r in retained:
            partitions = partitions_of.get(r.topic, set())
            if r.partition in partitions:
                present.append(r)
                continue
            self.findings[r.topic, r.partition] = f"partitions now {sorted(partitions)}"
            verdicts[r.topic, r.partition] = judge(r, None, None)
        if present:
            verdicts.update(await self._read_newest(reader, present))
        return verdicts

    async def _read_newest(self, reader: AIOKafkaConsumer, retained: list[Retained]) -> dict[tuple[str, int], Verdict]:
        """Read every partition's newest retained record at once, within one ``fetch_timeout_s``.

        All partitions are assigned and fetched together, so a pass over many partitions of a log the
        broker has lost waits one timeout, not one per partition (after a restart of the embedded
        broker, the last accepted records were republished only after tens of seconds).
        所有分区一并读取，整轮只等待一次超时（而非每个分区一次）。
        """
        wanted = {TopicPartition(r.topic, r.partition): r for r in retained}
        reader.assign(list(wanted))
        for tp, r in wanted.items():
            reader.seek(tp, r.last_offset)
        #: Per partition answered: (offset, event id) of the first record there, or None: out of range.
        read: dict[TopicPartition, tuple[int, str | None] | None] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.fetch_timeout_s
        while (waiting := [tp for tp in wanted if tp not in read]) and (left := deadline - loop.time()) > 0:
            try:
                batch = await reader.getmany(*waiting, timeout_ms=max(1, int(left * 1000)))
            except OffsetOutOfRangeError as exc:
                gone = [tp for tp in exc.args[0] if tp in wanted] if exc.args and isinstance(exc.args[0], dict) else []
                if not gone:
                    raise
                for tp in gone:
                    read[tp] = None
                    reader.pause(tp)
                continue
            for tp, records in batch.items():
                if records and tp not in read:
                    read[tp] = (records[0].offset, header(records[0], EVENT_ID_HEADER))
                    reader.pause(tp)
        return {(tp.topic, tp.partition): self._verdict(r, tp in read, read.get(tp)) for tp, r in wanted.items()}

    def _verdict(self, r: Retained, answered: bool, record: tuple[int, str | None] | None) -> Verdict:
        """One partition's verdict from what :meth:`_read_newest` read: nothing (``answered`` false), out
        of range (``record`` None), or the first record's (offset, event id). 单个分区的判定。"""
        key = (r.topic, r.partition, r.last_offset)
        if answered and record is None:
            self.findings[r.topic, r.partition] = "offset out of range"
            return judge(r, None, None)
        if record is None:
            # A reachable broker that twice returns nothing where a record should be does not have
            # it (Tansu acks records sent to a topic it lost and keeps none). Once proves nothing.
            # 代理可达却两次读不到应有的记录：视为丢失；一次不作判断。
            self._silent[key] = self._silent.get(key, 0) + 1
            if self._silent[key] < 2:
                return "unknown"
            self.findings[r.topic, r.partition] = "nothing returned at the recorded offset, twice"
            return judge(r, None, None)
        self._silent.pop(key, None)
        offset, event_id = record
        self.findings[r.topic, r.partition] = f"found {event_id} at {offset}"
        return judge(r, offset, event_id)

    async def _releasable(
        self, retained: list[Retained], verdicts: dict[tuple[str, int], Verdict]
    ) -> dict[tuple[str, int], int]:
        """Per partition, the offset below which every consumer group has committed."""
        _, admin = await self._clients()
        by_topic: dict[str, list[Retained]] = {}
        for r in retained:
            by_topic.setdefault(r.topic, []).append(r)
        out: dict[tuple[str, int], int] = {}
        for topic, items in by_topic.items():
            groups = TOPICS[topic].consumer_groups if topic in TOPICS else ()
            if not groups:
                continue
            tps = [TopicPartition(topic, r.partition) for r in items]
            commits: dict[str, dict[TopicPartition, int]] = {}
            for group in groups:
                answer = await asyncio.wait_for(
                    admin.list_consumer_group_offsets(group, partitions=tps), self.fetch_timeout_s
                )
                commits[group] = {tp: om.offset for tp, om in answer.items()}
            for r, tp in zip(items, tps, strict=True):
                verdict = verdicts.get((topic, r.partition), "unknown")
                out[topic, r.partition] = releasable_before(
                    r, verdict, [commits[g].get(tp) for g in groups], self.grace_s
                )
        return out
