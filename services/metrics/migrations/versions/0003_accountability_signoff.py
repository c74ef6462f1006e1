"""signed-off periods keep their 监督问责 report, frozen with the scores

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "period_signoffs",
        sa.Column("accountability", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        schema="metrics",
    )


def downgrade() -> None:
    op.drop_column("period_signoffs", "accountability", schema="metrics")
