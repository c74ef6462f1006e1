"""grid: the outbox and its queues keep their pages through a vacuum (no truncation)

A vacuum that truncates takes the table's ACCESS EXCLUSIVE lock: every lane's writes waited for it.
清理时不截断空页：截断需持排他锁，期间各通道写入都要等待。
See :func:`shared.migration_steps.queue_tables_keep_their_pages`.

Revision ID: 0008_queue_tables_keep_pages
Revises: 0007_outbox_pending_by_lane
Create Date: 2026-12-07 20:00:00
"""

from collections.abc import Sequence

from shared.migration_steps import queue_tables_keep_their_pages, queue_tables_keep_their_pages_downgrade

revision: str = "0008_queue_tables_keep_pages"
down_revision: str | None = "0007_outbox_pending_by_lane"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ('outbox', 'outbox_pending', 'outbox_published')


def upgrade() -> None:
    queue_tables_keep_their_pages("grid", _TABLES)


def downgrade() -> None:
    queue_tables_keep_their_pages_downgrade("grid", _TABLES)
