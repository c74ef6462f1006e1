"""consumer positions: where each consumer group is per partition, kept in PostgreSQL

The broker may forget commits or keep one made against a log it lost (see shared.messaging.epochs).
消费组在各分区的位置保存在 PostgreSQL。

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 19:05:00
"""

from collections.abc import Sequence

from shared.migration_steps import consumer_positions, consumer_positions_downgrade

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    consumer_positions("metrics")


def downgrade() -> None:
    consumer_positions_downgrade("metrics")
