"""case facts keep dispatchers' hand dispatches (准确派遣率) and whether the matter is devolved (双向考核)

Revision ID: 0005_two_way_assessment
Revises: 0004_source_indicators
Create Date: 2026-12-04 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_two_way_assessment"
down_revision: str | None = "0004_source_indicators"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "case_facts",
        sa.Column(
            "hand_dispatches",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default=sa.text("'[]'::jsonb"),
        ),
        schema="metrics",
    )
    op.add_column("case_facts", sa.Column("devolved", sa.Boolean(), nullable=True), schema="metrics")


def downgrade() -> None:
    op.drop_column("case_facts", "devolved", schema="metrics")
    op.drop_column("case_facts", "hand_dispatches", schema="metrics")
