"""grid outbox: a lane per pending row (grid publishes in the live lane only)

Revision ID: 0005_outbox_lanes
Revises: 0004_devolution_history
Create Date: 2026-12-05 04:10:00
"""

from collections.abc import Sequence

from shared.migration_steps import outbox_lanes, outbox_lanes_downgrade

revision: str = "0005_outbox_lanes"
down_revision: str | None = "0004_devolution_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_lanes("grid", ())


def downgrade() -> None:
    outbox_lanes_downgrade("grid")
