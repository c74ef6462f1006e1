"""Metrics service tables (schema ``metrics``). 绩效考核服务数据表。

* ``case_events`` — the raw log of every consumed ``case.*`` event 案件事件原始日志, so each
  case's fact can be recomputed from all of its events (order-independent, idempotent).
* ``case_facts`` — one row per case 案件事实 (see the team's domain notes on metrics), with the
  natural and working 处置时长 / 结案时长 precomputed at upsert time.
* ``units`` — names, kinds and townships of the handling units 承办单位, fetched from grid.
* ``schemes`` — versioned assessment schemes 考核方案 (id + version; one active version per id).
* ``ratings`` — a township's rating of a stationed agency per period 乡镇对派驻机构的评价.
* ``period_signoffs`` — signed-off periods 已签发周期 and the published scores 公布得分;
  ``signoff_changes`` — what changed since (pending a revision check);
  ``score_revisions`` — revisions 修订 shown beside the published scores.
* ``processed_messages`` — consumer idempotency keys (:mod:`shared.messaging`).
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
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
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata
from shared.messaging.tables import processed_messages_table

metadata = service_metadata("metrics")

_now = func.now()


def _ts(name: str, nullable: bool = True) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


case_events = Table(
    "case_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("case_id", Uuid, nullable=False),
    Column("type", Text, nullable=False),
    Column("version", Integer, nullable=False),
    _ts("occurred_at", nullable=False),
    Column("data", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=_now),
)
Index("ix_case_events_case_id", case_events.c.case_id)
# The 监督问责 report's cases: events of a few types in a period (migration 0006). 按类型与时间查事件。
Index("ix_case_events_type_occurred_at", case_events.c.type, case_events.c.occurred_at)

_empty_array = text("'{}'::text[]")

case_facts = Table(
    "case_facts",
    metadata,
    Column("case_id", Uuid, primary_key=True),
    _ts("reported_at"),
    _ts("dispatched_at"),
    _ts("accepted_at"),
    _ts("resolved_at"),
    _ts("verified_at"),
    _ts("closed_at"),
    _ts("deadline"),
    _ts("accept_deadline"),
    Column("time_basis", Text),
    Column("unit", Text),
    Column("unit_kind", Text),
    Column("township", Text),
    Column("matter", Text),
    Column("matter_group", Text),
    Column("source", Text),
    Column("urgency", Text),
    Column("rejections", Integer, nullable=False, server_default="0"),
    Column("rejected_by", ARRAY(Text), nullable=False, server_default=_empty_array),
    Column("units_rejected_validly", ARRAY(Text), nullable=False, server_default=_empty_array),
    Column("units_rejected_invalidly", ARRAY(Text), nullable=False, server_default=_empty_array),
    # The holding unit's own rejection that was not ruled valid counts against it. 退单计入承办单位。
    Column("rejected_by_holder", Boolean, nullable=False, server_default="false"),
    Column("extensions_requested", Integer, nullable=False, server_default="0"),
    Column("extensions", Integer, nullable=False, server_default="0"),
    Column("reworks", Integer, nullable=False, server_default="0"),
    Column("reopens", Integer, nullable=False, server_default="0"),
    Column("supervisions", Integer, nullable=False, server_default="0"),
    Column("escalations", Integer, nullable=False, server_default="0"),
    Column("escalated_to", Text),
    _ts("reported_in_at"),
    Column("cohandlers", ARRAY(Text), nullable=False, server_default=_empty_array),
    Column("triage_count", Integer, nullable=False, server_default="0"),
    Column("merged_into", Text),
    Column("overdue", Boolean, nullable=False, server_default="false"),
    Column("satisfaction", Text),
    Column("solved", Boolean),
    Column("self_handled", Boolean, nullable=False, server_default="false"),
    _ts("last_event_at"),
    Column("provisional", Boolean, nullable=False, server_default="false"),
    Column("event_count", Integer, nullable=False, server_default="0"),
    # A dispatcher's 手动派遣/改派: [{by, unit, at, accurate}] for 准确派遣率 (migration 0005).
    Column("hand_dispatches", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # The matter is devolved (下放) to the case's township: the two-way assessment's population.
    Column("devolved", Boolean),
    # 处置时长 dispatched → resolved; 结案时长 reported → closed; natural 自然 and working 工作 hours.
    Column("handling_natural_h", Double),
    Column("handling_working_h", Double),
    Column("closing_natural_h", Double),
    Column("closing_working_h", Double),
    Column("durations_provisional", Boolean, nullable=False, server_default="false"),
    # the approval and alarm sources, invalid reports (services.metrics.source_facts)
    Column("kind", Text, nullable=False, server_default="incident"),
    Column("reporter_id", Text),
    Column("device_id", Text),
    Column("invalid", Boolean, nullable=False, server_default="false"),
    Column("invalid_reason", Text),
    Column("auto_recovered", Boolean, nullable=False, server_default="false"),
    Column("false_alarm", Boolean, nullable=False, server_default="false"),
    Column("inspection_result", Text),
    Column("revoked", Boolean, nullable=False, server_default="false"),
    Column("occurrences", Integer, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=_now),
    # Every consumed event rewrites its case's row: free space on each page keeps those
    # updates HOT (no index writes). 每条事件都会重写案件行，留出页内空间以便 HOT 更新。
    postgresql_with={"fillfactor": 85},
)
Index("ix_case_facts_dispatched_at", case_facts.c.dispatched_at)
Index("ix_case_facts_deadline", case_facts.c.deadline)  # cases due in a period (migration 0006)
Index("ix_case_facts_unit", case_facts.c.unit)
Index("ix_case_facts_township", case_facts.c.township)
Index(
    "ix_case_facts_open",
    case_facts.c.township,
    postgresql_where=case_facts.c.closed_at.is_(None) & case_facts.c.dispatched_at.is_not(None),
)
Index(
    "ix_case_facts_provisional",
    case_facts.c.case_id,
    postgresql_where=case_facts.c.durations_provisional.is_(True),
)

units = Table(
    "units",
    metadata,
    Column("unit_id", Text, primary_key=True),
    Column("name", Text),
    Column("kind", Text),
    Column("township_code", Text),
    Column("department", Text),
    Column("covers", ARRAY(Text), nullable=False, server_default=_empty_array),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=_now),
)

schemes = Table(
    "schemes",
    metadata,
    Column("scheme_id", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("body", JSONB, nullable=False),
    Column("active", Boolean, nullable=False, server_default="false"),
    Column("origin", Text, nullable=False),
    Column("created_by", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=_now),
)

ratings = Table(
    "ratings",
    metadata,
    Column("period_id", Text, primary_key=True),
    Column("township", Text, primary_key=True),
    Column("unit", Text, primary_key=True),
    Column("rating", Double, nullable=False),
    Column("note", Text),
    Column("rated_by", Text),
    Column("rated_at", DateTime(timezone=True), nullable=False, server_default=_now),
)

period_signoffs = Table(
    "period_signoffs",
    metadata,
    Column("period_id", Text, primary_key=True),
    _ts("period_start", nullable=False),
    _ts("period_end", nullable=False),
    _ts("as_of", nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False, server_default=_now),
    Column("signed_by", Text),
    Column("snapshot", JSONB, nullable=False),
    Column("dirty", Boolean, nullable=False, server_default="false"),
    Column("accountability", JSONB),  # the 监督问责 report frozen with the scores (county-wide)
)

signoff_changes = Table(
    "signoff_changes",
    metadata,
    Column("period_id", Text, primary_key=True),
    Column("subject", Text, primary_key=True),
    Column("marked_at", DateTime(timezone=True), nullable=False, server_default=_now),
)

score_revisions = Table(
    "score_revisions",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("period_id", Text, nullable=False),
    Column("revision_no", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=_now),
    Column("subjects", JSONB, nullable=False),
    Column("snapshot", JSONB, nullable=False),
    Column("changes", JSONB, nullable=False),
    UniqueConstraint("period_id", "revision_no"),
)

processed_messages = processed_messages_table(metadata)
