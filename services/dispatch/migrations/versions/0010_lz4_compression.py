"""dispatch: large values compressed with lz4 where the server has it, not pglz

The outbox's events (a ``case.dispatched`` carries the routing explanation); the case row's large
columns have been on lz4 since 0002. 发件箱事件（案件行的大字段自 0002 起已用 lz4）。
See :func:`shared.migration_steps.lz4_where_the_server_has_it`.

Revision ID: 0010_lz4_compression
Revises: 0009_sweep_and_candidate_indexes
Create Date: 2026-12-06 22:40:00
"""

from collections.abc import Sequence

from shared.migration_steps import lz4_where_the_server_has_it, lz4_where_the_server_has_it_downgrade

revision: str = "0010_lz4_compression"
down_revision: str | None = "0009_sweep_and_candidate_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = {"outbox": ("value",)}


def upgrade() -> None:
    lz4_where_the_server_has_it("dispatch", _COLUMNS)


def downgrade() -> None:
    lz4_where_the_server_has_it_downgrade("dispatch", _COLUMNS)
