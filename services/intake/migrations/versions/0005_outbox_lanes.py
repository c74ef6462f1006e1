"""intake outbox: a lane per pending row (live, bulk), each relayed by its own loop

A live report no longer waits behind a history import's backlog in the relay's queue.
待发行分通道，实时记录不再排在批量导入积压之后。

Revision ID: 0005_outbox_lanes
Revises: 0004
Create Date: 2026-12-05 04:10:00
"""

from collections.abc import Sequence

from shared.migration_steps import outbox_lanes, outbox_lanes_downgrade

revision: str = "0005_outbox_lanes"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_lanes("intake", ("incident.reported.bulk",))


def downgrade() -> None:
    outbox_lanes_downgrade("intake")
