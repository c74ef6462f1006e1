"""Intake's tables (schema ``intake``): accepted records, verbatim, and the outbox."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Table, Text, UniqueConstraint, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata
from shared.messaging.outbox_tables import outbox_tables

metadata = service_metadata("intake")

#: 已受理事件: what the producer sent, verbatim (personal data included — never on Kafka).
accepted_events = Table(
    "accepted_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("source", Text, nullable=False),
    Column("source_id", Text, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("raw", JSONB, nullable=False),
    Column("normalised", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("api_key_name", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("source", "source_id"),
)

outbox = outbox_tables(metadata, unique_event_id=False)  # accepted_events decides what is new
