"""outbox: published rows are kept until every consumer group has them

PostgreSQL is the log of record; the broker only carries events (see shared.messaging.outbox).
发件箱：已发布行保留至所有消费组提交越过。

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 19:30:00
"""

from collections.abc import Sequence

from shared.migration_steps import outbox_retained_until_consumed, outbox_retained_until_consumed_downgrade

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_retained_until_consumed("grid")


def downgrade() -> None:
    outbox_retained_until_consumed_downgrade("grid")
