"""grid: large values compressed with lz4 where the server has it, not pglz

The jurisdiction bundles and their events (the largest values the grid writes). 辖区规则包及其事件。
See :func:`shared.migration_steps.lz4_where_the_server_has_it`.

Revision ID: 0006_lz4_compression
Revises: 0005_outbox_lanes
Create Date: 2026-12-06 22:40:00
"""

from collections.abc import Sequence

from shared.migration_steps import lz4_where_the_server_has_it, lz4_where_the_server_has_it_downgrade

revision: str = "0006_lz4_compression"
down_revision: str | None = "0005_outbox_lanes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = {"bundle_versions": ("bundle",), "outbox": ("value",)}


def upgrade() -> None:
    lz4_where_the_server_has_it("grid", _COLUMNS)


def downgrade() -> None:
    lz4_where_the_server_has_it_downgrade("grid", _COLUMNS)
