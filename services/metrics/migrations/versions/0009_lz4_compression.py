"""metrics: large values compressed with lz4 where the server has it, not pglz

The case events kept for the indicators (a dispatched case's carries its explanation). 指标所存的案件事件。
See :func:`shared.migration_steps.lz4_where_the_server_has_it`.

Revision ID: 0009_lz4_compression
Revises: 0008_accountability_indexes
Create Date: 2026-12-06 22:40:00
"""

from collections.abc import Sequence

from shared.migration_steps import lz4_where_the_server_has_it, lz4_where_the_server_has_it_downgrade

revision: str = "0009_lz4_compression"
down_revision: str | None = "0008_accountability_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = {"case_events": ("data",)}


def upgrade() -> None:
    lz4_where_the_server_has_it("metrics", _COLUMNS)


def downgrade() -> None:
    lz4_where_the_server_has_it_downgrade("metrics", _COLUMNS)
