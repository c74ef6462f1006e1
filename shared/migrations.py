"""Alembic migrations: each service migrates only its own schema.

Each service has ``services/<name>/migrations/`` (``env.py`` calls
:func:`run_env`); :func:`upgrade` runs them programmatically (``make run``,
test fixtures) and ``python -m shared.migrations <service> [url]`` from a shell.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import async_url

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("intake", "grid", "dispatch", "metrics")


def alembic_config(service: str, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", async_url(database_url).replace("%", "%%"))
    cfg.attributes["service_schema"] = service
    return cfg


def upgrade(service: str, database_url: str, revision: str = "head") -> None:
    """Bring one service's schema to ``revision`` (blocking; call from a thread inside an event loop)."""
    command.upgrade(alembic_config(service, database_url), revision)


def upgrade_all(database_url: str) -> None:
    for service in SERVICES:
        upgrade(service, database_url)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's ``migrations/env.py`` (online mode, asyncpg)."""
    schema = target_metadata.schema
    assert schema, "service metadata must name its schema"
    url = context.config.get_main_option("sqlalchemy.url")
    assert url

    def do_run(connection: Connection) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=lambda name, type_, parent: name == schema if type_ == "schema" else True,
            compare_type=True,
        )
        with context.begin_transaction():
            # Serialise concurrent migrators of the same schema (several replicas starting at once).
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"migrate:{schema}"})
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())


if __name__ == "__main__":  # pragma: no cover
    import os

    services = SERVICES if len(sys.argv) < 2 or sys.argv[1] == "all" else (sys.argv[1],)
    url = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("DATABASE_URL", "")
    if not url:
        sys.exit("usage: python -m shared.migrations <service|all> <database url>  (or set DATABASE_URL)")
    for svc in services:
        upgrade(svc, url)
        print(f"migrated {svc}")
