"""dispatch: the overdue sweep's index holds only cases it may flag; the duplicate check's index
filters time inside the index

* ``ix_cases_overdue_sweep``: its predicate becomes the sweep's whole condition but the time
  (not flagged, with a deadline, unmerged, deadline running). Closed, resolved and merged cases
  left it: before, every case closed on time stayed in it for good, so a pass that read it in
  deadline order read through the year's closed cases.
* ``ix_cases_open_matter_lat_lng``: ``reported_at`` becomes its fourth key, so the ±24 h window
  is checked in the index; before, every open case of the matter in the latitude band — the whole
  year's — was fetched from the table to read its time.

超期扫描索引只含可标记的案件；并案检查索引加入上报时间，时间窗在索引内过滤。

Revision ID: 0009_sweep_and_candidate_indexes
Revises: 0008_lanes
Create Date: 2026-12-06 10:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_sweep_and_candidate_indexes"
down_revision: str | None = "0008_lanes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The states are written out (not imported): a migration stays what it was when the code moves on.
_SWEEP = (
    "NOT overdue AND deadline IS NOT NULL AND merged_into IS NULL AND state IN "
    "('accepted', 'dispatched', 'rejected', 'reopened', 'reported', 'triage')"
)
_OPEN = "state <> 'closed' AND merged_into IS NULL"


def upgrade() -> None:
    op.execute("DROP INDEX dispatch.ix_cases_overdue_sweep")
    op.execute(f"CREATE INDEX ix_cases_overdue_sweep ON dispatch.cases (deadline) WHERE {_SWEEP}")
    op.execute("DROP INDEX dispatch.ix_cases_open_matter_lat_lng")
    op.execute(
        f"CREATE INDEX ix_cases_open_matter_lat_lng ON dispatch.cases (matter, lat, lng, reported_at) WHERE {_OPEN}"
    )


def downgrade() -> None:
    op.execute("DROP INDEX dispatch.ix_cases_open_matter_lat_lng")
    op.execute(f"CREATE INDEX ix_cases_open_matter_lat_lng ON dispatch.cases (matter, lat, lng) WHERE {_OPEN}")
    op.execute("DROP INDEX dispatch.ix_cases_overdue_sweep")
    op.execute(
        "CREATE INDEX ix_cases_overdue_sweep ON dispatch.cases (deadline) WHERE NOT overdue AND deadline IS NOT NULL"
    )
