"""intake: large values compressed with lz4 where the server has it, not pglz

A report as received and as normalised, and its event in the outbox. 原始与规范化的上报及其发件箱事件。
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

_COLUMNS = {"accepted_events": ("raw", "normalised"), "outbox": ("value",)}


def upgrade() -> None:
    lz4_where_the_server_has_it("intake", _COLUMNS)


def downgrade() -> None:
    lz4_where_the_server_has_it_downgrade("intake", _COLUMNS)
