"""Grid service tables (schema ``grid``)."""

from __future__ import annotations

from shared.db import service_metadata

metadata = service_metadata("grid")
