"""The outbox's four tables (发件箱表), declared in a service's schema, and how their statements read.

* ``outbox`` — every event a service emits, kept until every consumer group has it;
* ``outbox_pending`` — the relay's queue of rows not yet published, each in its lane;
* ``outbox_published`` — where the broker put published rows (a record per partition per batch);
* ``outbox_partitions`` — each partition's log epoch and the last offset acked.

:data:`KEYED_READS` is the setting every relay and retention transaction runs with. The relay
(:class:`shared.messaging.outbox.OutboxRelay`) and the retention keeper
(:mod:`shared.messaging.retention`) use these tables; the migrations create them
(:mod:`shared.migration_steps`). 发件箱四表的声明，以及读取它们的事务设置。
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.messaging.upkeep import KEEP_PAGES

__all__ = [
    "KEYED_READS",
    "outbox_partitions_table",
    "outbox_pending_table",
    "outbox_published_table",
    "outbox_table",
    "outbox_tables",
]


#: For the transaction that runs it: no sequential scans (``enable_seqscan`` off), and no JIT. The
#: relay's and the retention's statements read the queue tables by key only, and a queue table is
#: empty — known empty to the planner after a vacuum — then full again many times an hour. A plan
#: made at an empty moment (a prepared statement's generic plan, cached until the next ``ANALYZE``)
#: reads the outbox by a sequential scan per pending row once it is full: 1–179 s a claim in a 100 k
#: replay on a server with autovacuum on, live reports seconds late. With seq scans off the planner
#: takes the key whatever the statistics say. JIT off because a scan that must stay sequential (the
#: few rows of ``outbox_partitions``) then costs more than ``jit_above_cost``, and compiling the
#: claim took 100 ms each time. 仅对所在事务：禁用顺序扫描与 JIT。队列表按键读取；在表为空时缓存的
#: 计划会在表满后对每个待发行顺序扫描整个发件箱；禁用顺序扫描后成本超过 JIT 阈值，编译每次 100 ms。
KEYED_READS: Final = "set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)"


def outbox_table(metadata: MetaData, *, unique_event_id: bool = True) -> Table:
    """The outbox of one service, in its own schema: every event until all its consumers have it.

    ``unique_event_id``: :func:`add_events` relies on it to be idempotent; a service whose own
    table already decides that an event is new (intake's accepted records) does without it.
    """
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=unique_event_id),
        Column("topic", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("key", Text, nullable=True),
        Column("value", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        postgresql_with=KEEP_PAGES,
    )


def outbox_pending_table(metadata: MetaData) -> Table:
    """Outbox rows not yet published (the relay's queue, narrow so claiming and clearing is cheap),
    each in its topic's lane (:func:`shared.events.topic_lane`: 0 live, 1 bulk), which its own
    relay loop claims in id order. 待发布队列（窄表），按主题所属通道分别认领。

    Keyed ``(lane, id)`` and indexed by nothing else, so a lane's claim (``lane = L ORDER BY id``)
    has one way to read it: from the lane's first entry. With a second index on ``id`` alone,
    statistics taken while one lane had every pending row (autovacuum's, or the upkeep's ANALYZE,
    after a quiet spell of live reports) let the planner walk ``id`` order and filter on the lane:
    the live claim then read through an import's whole backlog first (up to 40 s a claim, live
    reports seconds late). 以 (lane, id) 为主键、无其他索引：通道认领只能从该通道首项读起；若另有
    ``id`` 单列索引，统计信息过时时计划器会按 id 顺序扫描并按通道过滤，实时认领要先读过整个导入积压。"""
    return Table(
        "outbox_pending",
        metadata,
        Column("id", BigInteger, nullable=False, autoincrement=False),
        Column("lane", SmallInteger, nullable=False, server_default=text("0")),
        PrimaryKeyConstraint("lane", "id", name="outbox_pending_pkey"),
        postgresql_with=KEEP_PAGES,
    )


def outbox_published_table(metadata: MetaData) -> Table:
    """Where the broker put published rows: one record per partition per relay batch, the rows'
    ids in offset order from ``first_offset``. Kept until every consumer group committed past
    ``last_offset``. 已发布行的位置：每批每分区一条，消费组全部越过后删除。"""
    return Table(
        "outbox_published",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("topic", Text, nullable=False),
        Column("partition", Integer, nullable=False),
        Column("first_offset", BigInteger, nullable=False),
        Column("last_offset", BigInteger, nullable=False),
        Column("outbox_ids", ARRAY(BigInteger), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index(None, "topic", "partition", "last_offset"),
        postgresql_with=KEEP_PAGES,
    )


def outbox_partitions_table(metadata: MetaData) -> Table:
    """The broker's log per partition as the relay last saw it: its epoch and the last offset
    acked. 每个分区的日志纪元与最后确认的偏移。"""
    return Table(
        "outbox_partitions",
        metadata,
        Column("topic", Text, primary_key=True),
        Column("partition", Integer, primary_key=True),
        Column("epoch", Text, nullable=False),
        Column("last_offset", BigInteger, nullable=False),
        Column("since", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def outbox_tables(metadata: MetaData, *, unique_event_id: bool = True) -> Table:
    """Declare the outbox and its three companions in ``metadata``; returns the outbox."""
    for make in (outbox_pending_table, outbox_published_table, outbox_partitions_table):
        make(metadata)
    return outbox_table(metadata, unique_event_id=unique_event_id)
