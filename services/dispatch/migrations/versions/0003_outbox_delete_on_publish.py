"""outbox: published rows are deleted, no sent_at

The relay deletes the rows Kafka acknowledged instead of stamping ``sent_at`` (a stamp rewrote
every row and its indexes). Rows already published are removed; unpublished rows stay and are
relayed as before. 发件箱：已发布的行直接删除，不再记录 sent_at。

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 11:30:00
"""

from collections.abc import Sequence

from shared.migration_steps import outbox_delete_on_publish, outbox_delete_on_publish_downgrade

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_delete_on_publish("dispatch")


def downgrade() -> None:
    outbox_delete_on_publish_downgrade("dispatch")
