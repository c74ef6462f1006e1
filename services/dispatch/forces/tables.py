"""力量调度's tables (schema ``dispatch``, migration ``0007_forces``). 力量调度数据表。

* ``force_documents`` — a county's people document as loaded (members, teams, shifts), versioned;
  ``force_members`` / ``force_teams`` — its rows for lookups 队员与编组.
* ``force_status`` — busy/free from the terminal 忙闲状态; ``force_positions`` — the latest position
  per member; ``force_tracks`` — the 24-hour track (purged on a schedule) 位置与轨迹.
* ``force_webhooks`` / ``force_push_queue`` / ``force_deliveries`` — push subscriptions, the transitions
  waiting to be fanned out, the deliveries (pending → delivered, or dead after N failures) 任务推送.
* ``joint_operations`` / ``joint_operation_units`` / ``joint_operation_transitions`` — 联合执法, each
  participating unit's 报到, and the operation's audit trail.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
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

from services.dispatch.models import metadata

_TEXTS = text("'{}'::text[]")

force_documents = Table(
    "force_documents",
    metadata,
    Column("county_code", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("document", JSONB, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

force_members = Table(
    "force_members",
    metadata,
    Column("member_id", Text, primary_key=True),
    Column("county_code", Text, nullable=False),
    Column("unit", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("grids", ARRAY(Text), nullable=False, server_default=_TEXTS),
    Column("terminal_id", Text, nullable=True),
    Column("phone", Text, nullable=True),
)
Index("ix_force_members_unit", force_members.c.unit)

force_teams = Table(
    "force_teams",
    metadata,
    Column("team_id", Text, primary_key=True),
    Column("county_code", Text, nullable=False),
    Column("unit", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("members", ARRAY(Text), nullable=False, server_default=_TEXTS),
)

force_status = Table(
    "force_status",
    metadata,
    Column("member_id", Text, primary_key=True),
    Column("busy", Boolean, nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("since", DateTime(timezone=True), nullable=False),
)

force_positions = Table(
    "force_positions",
    metadata,
    Column("member_id", Text, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("lng", Float, nullable=False),
    Column("lat", Float, nullable=False),
)

force_tracks = Table(
    "force_tracks",
    metadata,
    Column("member_id", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("lng", Float, nullable=False),
    Column("lat", Float, nullable=False),
)
Index("ix_force_tracks_member_at", force_tracks.c.member_id, force_tracks.c.at)
Index("ix_force_tracks_at", force_tracks.c.at)

force_webhooks = Table(
    "force_webhooks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("unit", Text, nullable=False),
    Column("member", Text, nullable=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_by", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

force_deliveries = Table(
    "force_deliveries",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("webhook_id", Uuid, nullable=False),
    Column("transition_id", BigInteger, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("webhook_id", "transition_id"),
)
Index("ix_force_deliveries_due", force_deliveries.c.next_attempt_at, postgresql_where=text("status = 'pending'"))

#: Transitions not yet fanned out to the subscriptions: filled by a trigger on ``case_transitions`` in the
#: transition's own transaction (only while some subscription is active), emptied by the push worker.
#: 待推送的流转：由 ``case_transitions`` 上的触发器在同一事务中写入（有有效订阅时），推送任务取走。
force_push_queue = Table(
    "force_push_queue",
    metadata,
    Column("transition_id", BigInteger, primary_key=True),
)

joint_operations = Table(
    "joint_operations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("township", Text, nullable=False),
    Column("lead_unit", Text, nullable=False),
    Column("units", ARRAY(Text), nullable=False, server_default=_TEXTS),
    Column("state", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("place", Text, nullable=False),
    Column("cases", ARRAY(Uuid), nullable=False, server_default=text("'{}'::uuid[]")),
    Column("note", Text, nullable=False, server_default=""),
    Column("snapshot", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

joint_operation_transitions = Table(
    "joint_operation_transitions",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("operation_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("action", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("actor_role", Text, nullable=False),
    Column("actor_unit", Text, nullable=True),
    Column("actor_id", Text, nullable=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("body", JSONB, nullable=False),
    Column("changes", JSONB, nullable=False),
    UniqueConstraint("operation_id", "version"),
)

__all__ = [
    "force_deliveries",
    "force_documents",
    "force_members",
    "force_positions",
    "force_push_queue",
    "force_status",
    "force_teams",
    "force_tracks",
    "force_webhooks",
    "joint_operation_transitions",
    "joint_operations",
]
