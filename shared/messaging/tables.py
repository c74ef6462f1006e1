"""The consumer side's own tables (消费端表): idempotency keys and positions, in the consuming
service's schema."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, Text, Uuid, func

from shared.messaging.upkeep import KEEP_PAGES


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
    against a log it then lost (see :mod:`shared.messaging.epochs`). 各消费组在各分区的位置及最后处理的记录。"""
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
        postgresql_with=KEEP_PAGES,
    )
