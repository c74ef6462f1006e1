"""dispatch: each case's lane (live, bulk) and the outbox's lanes

A case a history import created keeps all its events in the bulk lane (``case.events.bulk``);
each lane's pending rows are relayed by their own loop, so a live case's events never wait
behind an import's. 案件记录其通道；发件箱待发行分通道，实时案件事件不再排在导入之后。

Revision ID: 0008_lanes
Revises: 0007_forces
Create Date: 2026-12-05 04:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.migration_steps import outbox_lanes, outbox_lanes_downgrade

revision: str = "0008_lanes"
down_revision: str | None = "0007_forces"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "cases", sa.Column("lane", sa.Text(), nullable=False, server_default=sa.text("'live'")), schema="dispatch"
    )
    outbox_lanes("dispatch", ())


def downgrade() -> None:
    outbox_lanes_downgrade("dispatch")
    op.drop_column("cases", "lane", schema="dispatch")
