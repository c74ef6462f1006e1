"""intake outbox: no unique index on the event id

Only a newly accepted record (accepted_events' primary key decides) gets an outbox row, so the
outbox's own unique index on the event id was a second, random-key index insert per event.
发件箱不再单独对事件 id 建唯一索引（由受理表主键保证）。

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 19:55:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("uq_outbox_event_id", "outbox", schema="intake", type_="unique")


def downgrade() -> None:
    op.create_unique_constraint("uq_outbox_event_id", "outbox", ["event_id"], schema="intake")
