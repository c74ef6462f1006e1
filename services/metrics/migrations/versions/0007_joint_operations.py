"""joint operations (联合执法) in 监督问责: the operation events' log and each operation's late and absent units

Additive: two new tables. 新增联合执法事件日志与迟到/缺席表。

Revision ID: 0007_joint_operations
Revises: 0005_two_way_assessment
Create Date: 2026-12-05 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_joint_operations"
down_revision: str | None = "0005_two_way_assessment"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operation_events",
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("operation_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="metrics",
    )
    op.create_index("ix_operation_events_operation_id", "operation_events", ["operation_id"], schema="metrics")
    op.create_table(
        "operation_lapses",
        sa.Column("operation_id", sa.Uuid(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("township", sa.Text(), nullable=False),
        sa.Column("lead_unit", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cases", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("operation_id", "unit", "kind"),
        schema="metrics",
    )
    op.create_index("ix_operation_lapses_at", "operation_lapses", ["at"], schema="metrics")


def downgrade() -> None:
    op.drop_index("ix_operation_lapses_at", table_name="operation_lapses", schema="metrics")
    op.drop_table("operation_lapses", schema="metrics")
    op.drop_index("ix_operation_events_operation_id", table_name="operation_events", schema="metrics")
    op.drop_table("operation_events", schema="metrics")
