"""outbox: published rows are deleted, no sent_at

The relay deletes the rows Kafka acknowledged instead of stamping ``sent_at`` (a stamp rewrote
every row and its indexes). Rows already published are removed; unpublished rows stay and are
relayed as before. 发件箱：已发布的行直接删除，不再记录 sent_at。

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "dispatch"


def upgrade() -> None:
    op.execute(f"DELETE FROM {SCHEMA}.outbox WHERE sent_at IS NOT NULL")
    op.drop_index("ix_outbox_sent_at", table_name="outbox", schema=SCHEMA)
    op.drop_index("ix_outbox_unsent", table_name="outbox", schema=SCHEMA)
    op.drop_column("outbox", "sent_at", schema=SCHEMA)


def downgrade() -> None:
    op.add_column("outbox", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True), schema=SCHEMA)
    op.create_index("ix_outbox_unsent", "outbox", ["id"], schema=SCHEMA, postgresql_where=sa.text("sent_at IS NULL"))
    op.create_index(
        "ix_outbox_sent_at", "outbox", ["sent_at"], schema=SCHEMA, postgresql_where=sa.text("sent_at IS NOT NULL")
    )
