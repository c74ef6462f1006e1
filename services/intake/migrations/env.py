"""Alembic environment of the intake service (schema ``intake``)."""

from services.intake.models import metadata
from shared.migrations import run_env

run_env(metadata)
