"""Alembic environment of the grid service (schema ``grid``)."""

from services.grid.models import metadata
from shared.migrations import run_env

run_env(metadata)
