"""dispatch outbox: the pending queue keyed (lane, id), with no index on id alone

A live claim can no longer walk an import's backlog in id order (stale statistics chose that plan).
待发队列以 (lane, id) 为主键：实时认领不再按 id 顺序读过导入积压。
See :func:`shared.migration_steps.outbox_pending_keyed_by_lane`.

Revision ID: 0011_outbox_pending_by_lane
Revises: 0010_lz4_compression
Create Date: 2026-12-07 07:10:00
"""

from collections.abc import Sequence

from shared.migration_steps import outbox_pending_keyed_by_lane, outbox_pending_keyed_by_lane_downgrade

revision: str = "0011_outbox_pending_by_lane"
down_revision: str | None = "0010_lz4_compression"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_pending_keyed_by_lane("dispatch")


def downgrade() -> None:
    outbox_pending_keyed_by_lane_downgrade("dispatch")
