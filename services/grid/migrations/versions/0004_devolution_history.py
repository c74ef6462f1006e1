"""grid: devolution_changes — every recorded devolution decision (文号, who, when, diff)

下放清单调整记录（文号、登记人、登记时间、差异）。Additive. 仅新增。

Revision ID: 0004_devolution_history
Revises: 0003
Create Date: 2026-12-05 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_devolution_history"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "devolution_changes",
        sa.Column("county_code", sa.Text(), nullable=False),
        sa.Column(
            "version", sa.Integer(), nullable=False, comment="bundle version the decision made 所生成的数据包版本"
        ),
        sa.Column("document", sa.Text(), nullable=False, comment="the decision's 文号"),
        sa.Column(
            "items",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="the diff: township, matter, effective_from, before, after",
        ),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["county_code", "version"], ["grid.bundle_versions.county_code", "grid.bundle_versions.version"]
        ),
        sa.PrimaryKeyConstraint("county_code", "version"),
        schema="grid",
    )


def downgrade() -> None:
    op.drop_table("devolution_changes", schema="grid")
