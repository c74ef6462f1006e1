"""indexes for the 监督问责 report: events by type and time, facts by deadline

The report picks its cases from the events of a few types in the period (超期, 判定退单, 重办, 核查, 督办,
吹哨) and from the cases due in it, instead of reading every event of every touched case.

Revision ID: 0008_accountability_indexes
Revises: 0007_joint_operations
Create Date: 2026-12-05 00:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_accountability_indexes"
down_revision: str | None = "0007_joint_operations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_case_events_type_occurred_at", "case_events", ["type", "occurred_at"], schema="metrics")
    op.create_index("ix_case_facts_deadline", "case_facts", ["deadline"], schema="metrics")


def downgrade() -> None:
    op.drop_index("ix_case_facts_deadline", table_name="case_facts", schema="metrics")
    op.drop_index("ix_case_events_type_occurred_at", table_name="case_events", schema="metrics")
