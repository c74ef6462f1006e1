"""metrics: the consumers' positions keep their pages through a vacuum (no truncation)

A vacuum that truncates takes the table's ACCESS EXCLUSIVE lock: every lane's writes waited for it.
清理时不截断空页：截断需持排他锁，期间各通道写入都要等待。
See :func:`shared.migration_steps.queue_tables_keep_their_pages`.

Revision ID: 0010_queue_tables_keep_pages
Revises: 0009_lz4_compression
Create Date: 2026-12-07 20:00:00
"""

from collections.abc import Sequence

from shared.migration_steps import queue_tables_keep_their_pages, queue_tables_keep_their_pages_downgrade

revision: str = "0010_queue_tables_keep_pages"
down_revision: str | None = "0009_lz4_compression"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ('consumer_positions',)


def upgrade() -> None:
    queue_tables_keep_their_pages("metrics", _TABLES)


def downgrade() -> None:
    queue_tables_keep_their_pages_downgrade("metrics", _TABLES)
