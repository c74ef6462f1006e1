"""dispatch hot path storage: lz4 for the large JSONB columns, lng in the duplicate-check index

* A case row carries its routing explanation (several kB of JSON), the lifecycle snapshot and the
  incident; with the default ``pglz`` the server spends much of a case insert compressing them
  (TOAST). ``lz4`` compresses several times faster; the stored values are the same. A server
  built without lz4 keeps ``pglz`` (nothing changes).
* The duplicate check looks for open cases of a matter in a small box; the index had (matter,
  lat) only, so every case of the matter in the whole latitude band across the county was read
  from the table to test its longitude — more with every case. With ``lng`` in the index the
  band is filtered inside the index.

案件行的大 JSONB 列改用 lz4 压缩（服务端支持时；存储的值不变）；并案检查索引加入经度，
在索引内按范围过滤，不再逐行回表检查整条纬度带上的案件。

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column) pairs compressed with lz4. 使用 lz4 压缩的列。
COLUMNS: tuple[tuple[str, str], ...] = (
    ("cases", "explanation"),
    ("cases", "snapshot"),
    ("cases", "incident"),
    ("case_transitions", "changes"),
)
OPEN = sa.text("state <> 'closed' AND merged_into IS NULL")


def _set_compression(method: str) -> None:
    for table, column in COLUMNS:
        # Only new values use the method; a server without lz4 support raises feature_not_supported.
        # 只影响新写入的值；不支持 lz4 的服务端报 feature_not_supported，忽略即可。
        op.execute(
            f"""
            DO $$ BEGIN
                ALTER TABLE dispatch.{table} ALTER COLUMN {column} SET COMPRESSION {method};
            EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
                RAISE NOTICE 'compression method {method} not available: % keeps its compression', '{column}';
            END $$;
            """
        )


def upgrade() -> None:
    _set_compression("lz4")
    op.create_index(
        "ix_cases_open_matter_lat_lng", "cases", ["matter", "lat", "lng"], schema="dispatch", postgresql_where=OPEN
    )
    op.drop_index("ix_cases_open_matter_lat", table_name="cases", schema="dispatch", postgresql_where=OPEN)


def downgrade() -> None:
    op.create_index("ix_cases_open_matter_lat", "cases", ["matter", "lat"], schema="dispatch", postgresql_where=OPEN)
    op.drop_index("ix_cases_open_matter_lat_lng", table_name="cases", schema="dispatch", postgresql_where=OPEN)
    _set_compression("default")
