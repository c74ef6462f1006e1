"""Dispatch service tables (schema ``dispatch``). 派遣服务数据表。

* ``cases`` 案件 — one row per incident (``id`` = uuid5 of the incident event id, so
  a replay finds the same row); the lifecycle snapshot as columns for queries plus
  the whole :class:`~services.dispatch.lifecycle.CaseSnapshot` as JSONB, the routing
  facts and explanation, and the incident as received. 每个事件一行。
* ``case_transitions`` 时间线 — every transition (actor, time, body, changes, deadline
  in force, published event id); ``UNIQUE(case_id, version)``; its ``id`` orders the
  SSE stream. 每次流转一行，``id`` 也是事件流的游标。
* ``outbox`` and ``processed_messages`` from the shared library. 发件箱与消费去重表。
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from services.dispatch.case_model import RUNNING_STATES
from shared.db import service_metadata
from shared.messaging.outbox_tables import outbox_tables
from shared.messaging.tables import processed_messages_table

metadata = service_metadata("dispatch")

#: 案件. Columns mirror the lifecycle snapshot for queries; ``snapshot`` is authoritative.
cases = Table(
    "cases",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("seq", BigInteger, Identity(always=False), nullable=False, unique=True),
    Column("incident_id", Uuid, nullable=False, unique=True),
    Column("source", Text, nullable=False),
    Column("source_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("township", Text, nullable=True),
    Column("village", Text, nullable=True),
    Column("grid", Text, nullable=True),
    Column("unit", Text, nullable=True),
    Column("unit_kind", Text, nullable=True),
    Column("cohandlers", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("escalated_to", Text, nullable=True),
    Column("matter", Text, nullable=True),
    Column("matter_group", Text, nullable=True),
    Column("urgency", Text, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    Column("dispatched_at", DateTime(timezone=True), nullable=True),
    Column("lng", Float, nullable=True),
    Column("lat", Float, nullable=True),
    Column("phone_hash", Text, nullable=True),
    Column("deadline", DateTime(timezone=True), nullable=True),
    Column("accept_deadline", DateTime(timezone=True), nullable=True),
    Column("reject_window_ends_at", DateTime(timezone=True), nullable=True),
    Column("time_basis", Text, nullable=True),
    Column("provisional", Boolean, nullable=False, server_default=text("false")),
    Column("overdue", Boolean, nullable=False, server_default=text("false")),
    Column("merged_into", Uuid, nullable=True),
    Column("triage_reason", Text, nullable=True),
    Column("decided_by", Text, nullable=True),
    Column("rule_id", Text, nullable=True),
    Column("rules_version", Integer, nullable=True),
    Column("jurisdiction_version", Integer, nullable=True),
    Column("placement_method", Text, nullable=True),
    Column("devolved", Boolean, nullable=True),
    Column("kind", Text, nullable=False, server_default=text("'incident'")),
    Column("reporter_id", Text, nullable=True),
    Column("device_id", Text, nullable=True),
    Column("alarm_type", Text, nullable=True),
    Column("follow_up_of", Uuid, nullable=True),
    Column("occurrences", Integer, nullable=False, server_default=text("1")),
    Column("invalid_reason", Text, nullable=True),
    Column("inspection_result", Text, nullable=True),
    Column("enforcement_case_no", Text, nullable=True),
    Column("follow_up_case", Text, nullable=True),
    Column("close_reason", Text, nullable=True),
    Column("false_alarm", Boolean, nullable=False, server_default=text("false")),
    # The lane 通道 the case came in (live, or bulk: a history import); all its events travel in it.
    Column("lane", Text, nullable=False, server_default=text("'live'")),
    Column("explanation", JSONB, nullable=False),
    Column("snapshot", JSONB, nullable=False),
    Column("incident", JSONB, nullable=False),
    Column("assignee", Text, nullable=True),
    Column("assignees", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_cases_source_id", cases.c.source, cases.c.source_id)
Index("ix_cases_township_seq", cases.c.township, cases.c.seq)
Index("ix_cases_unit_seq", cases.c.unit, cases.c.seq)
Index("ix_cases_state_seq", cases.c.state, cases.c.seq)
#: Open, unmerged cases by matter and position: the duplicate check (the longitude range and the
#: time window are filtered inside the index). 并案检查索引（经度范围与时间窗在索引内过滤）。
Index(
    "ix_cases_open_matter_lat_lng",
    cases.c.matter,
    cases.c.lat,
    cases.c.lng,
    cases.c.reported_at,
    postgresql_where=text("state <> 'closed' AND merged_into IS NULL"),
)
Index(
    "ix_cases_open_phone",
    cases.c.phone_hash,
    postgresql_where=text("state <> 'closed' AND merged_into IS NULL AND phone_hash IS NOT NULL"),
)
#: Open alarm cases by device and type: the burst check (告警合并). 告警合并查询索引。
Index(
    "ix_cases_open_alarm",
    cases.c.device_id,
    cases.c.alarm_type,
    postgresql_where=text("state <> 'closed' AND device_id IS NOT NULL"),
)
#: Cases by the members holding them (派单到人): a member token's scope. 队员可见范围索引。
Index("ix_cases_assignees", cases.c.assignees, postgresql_using="gin")
#: The overdue sweep's whole condition but the time (超期扫描条件): not yet flagged, with a deadline,
#: unmerged, its deadline running. The sweep's query states it verbatim, so the partial index
#: below is provably usable; closed, resolved and merged cases are not in it, so a pass reads only
#: cases it may flag however many the year has closed. 超期扫描条件（除时间外），查询逐字使用。
OVERDUE_SWEEP_CONDITION = (
    "NOT overdue AND deadline IS NOT NULL AND merged_into IS NULL AND state IN ("
    + ", ".join(f"'{state}'" for state in sorted(RUNNING_STATES))
    + ")"
)
#: Cases the sweep may flag, by deadline. 超期扫描索引。
Index("ix_cases_overdue_sweep", cases.c.deadline, postgresql_where=text(OVERDUE_SWEEP_CONDITION))

#: 案件时间线: every transition, replayable with lifecycle.replay.
case_transitions = Table(
    "case_transitions",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("case_id", Uuid, ForeignKey("dispatch.cases.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("action", Text, nullable=True),
    Column("event_type", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("previous_state", Text, nullable=True),
    Column("actor_role", Text, nullable=False),
    Column("actor_unit", Text, nullable=True),
    Column("actor_township", Text, nullable=True),
    Column("actor_id", Text, nullable=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("note", Text, nullable=True),
    Column("body", JSONB, nullable=False),
    Column("changes", JSONB, nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=True),
    Column("event_id", Uuid, nullable=True, unique=True),
    UniqueConstraint("case_id", "version"),
)

#: 告警次数: every alarm that became or joined a case (one row per alarm; a replay adds nothing).
#: 每条告警一行（成为或并入某案件）；重放不重复计数。
alarm_occurrences = Table(
    "alarm_occurrences",
    metadata,
    Column("incident_id", Uuid, primary_key=True),
    Column("case_id", Uuid, nullable=False, index=True),  # no foreign key: cases may be truncated on replay
    Column("alarm_id", Text, nullable=False),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = outbox_tables(metadata)
processed_messages = processed_messages_table(metadata)
