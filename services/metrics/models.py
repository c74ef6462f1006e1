"""Metrics service tables (schema ``metrics``)."""

from __future__ import annotations

from shared.db import service_metadata

metadata = service_metadata("metrics")
