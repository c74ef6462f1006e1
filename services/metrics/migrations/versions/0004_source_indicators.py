"""approval and alarm sources, invalid reports: the case facts they add

Additive: new columns of ``case_facts`` with defaults (an existing fact reads as an incident,
valid, not auto-recovered). 案件事实新增列：案件类型、上报人、设备、作废、自动恢复、误报、检查结果、撤销、告警次数。

Revision ID: 0004_source_indicators
Revises: 0003
Create Date: 2026-12-04 23:50:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004_source_indicators"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS: tuple[tuple[str, Any, str | None], ...] = (
    ("kind", sa.Text(), "incident"),
    ("reporter_id", sa.Text(), None),
    ("device_id", sa.Text(), None),
    ("invalid", sa.Boolean(), "false"),
    ("invalid_reason", sa.Text(), None),
    ("auto_recovered", sa.Boolean(), "false"),
    ("false_alarm", sa.Boolean(), "false"),
    ("inspection_result", sa.Text(), None),
    ("revoked", sa.Boolean(), "false"),
    ("occurrences", sa.Integer(), "1"),
)


def upgrade() -> None:
    for name, type_, default in _COLUMNS:
        column = sa.Column(name, type_, nullable=default is None, server_default=default)
        op.add_column("case_facts", column, schema="metrics")


def downgrade() -> None:
    for name, _, _ in reversed(_COLUMNS):
        op.drop_column("case_facts", name, schema="metrics")
