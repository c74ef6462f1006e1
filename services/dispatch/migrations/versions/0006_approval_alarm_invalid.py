"""approval and alarm sources, invalid reports: case kind, reporter and device, alarm occurrences

Additive: new nullable columns (``kind`` defaults to ``incident``), an index for the burst check
and the ``alarm_occurrences`` table. 审批办件与监测告警：案件类型、上报人与设备列、告警次数表。

Revision ID: 0006_approval_alarm_invalid
Revises: 0005
Create Date: 2026-12-04 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_approval_alarm_invalid"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("kind", sa.Text(), nullable=False, server_default="incident"), schema="dispatch")
    op.add_column("cases", sa.Column("reporter_id", sa.Text(), nullable=True), schema="dispatch")
    op.add_column("cases", sa.Column("device_id", sa.Text(), nullable=True), schema="dispatch")
    op.add_column("cases", sa.Column("alarm_type", sa.Text(), nullable=True), schema="dispatch")
    op.add_column("cases", sa.Column("follow_up_of", sa.Uuid(), nullable=True), schema="dispatch")
    op.add_column(
        "cases", sa.Column("occurrences", sa.Integer(), nullable=False, server_default="1"), schema="dispatch"
    )
    for column in ("invalid_reason", "inspection_result", "enforcement_case_no", "follow_up_case", "close_reason"):
        op.add_column("cases", sa.Column(column, sa.Text(), nullable=True), schema="dispatch")
    op.add_column(
        "cases", sa.Column("false_alarm", sa.Boolean(), nullable=False, server_default=sa.false()), schema="dispatch"
    )
    op.create_index(
        "ix_cases_open_alarm",
        "cases",
        ["device_id", "alarm_type"],
        schema="dispatch",
        postgresql_where=sa.text("state <> 'closed' AND device_id IS NOT NULL"),
    )
    op.create_table(
        "alarm_occurrences",
        sa.Column("incident_id", sa.Uuid(), primary_key=True),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("alarm_id", sa.Text(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="dispatch",
    )
    op.create_index("ix_alarm_occurrences_case_id", "alarm_occurrences", ["case_id"], schema="dispatch")


def downgrade() -> None:
    op.drop_table("alarm_occurrences", schema="dispatch")
    op.drop_index("ix_cases_open_alarm", table_name="cases", schema="dispatch")
    for column in (
        "false_alarm",
        "close_reason",
        "follow_up_case",
        "enforcement_case_no",
        "inspection_result",
        "invalid_reason",
        "occurrences",
        "follow_up_of",
        "alarm_type",
        "device_id",
        "reporter_id",
        "kind",
    ):
        op.drop_column("cases", column, schema="dispatch")
