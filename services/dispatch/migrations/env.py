"""Alembic environment of the dispatch service (schema ``dispatch``)."""

from services.dispatch.models import metadata
from shared.migrations import run_env

run_env(metadata)
