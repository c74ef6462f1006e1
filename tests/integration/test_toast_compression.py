"""Large values are compressed with lz4 where the server has it, and migrations run where it has not
(see :func:`shared.migration_steps.lz4_where_the_server_has_it`). 大字段在支持的服务器上用 lz4 压缩。"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from sqlalchemy import text

from shared.db import create_engine
from shared.embedded import EmbeddedPostgres
from shared.migrations import upgrade_all

#: What the migrations put on lz4, by schema and table (dispatch's case columns since its 0002).
LZ4_COLUMNS = {
    "dispatch.cases": {"explanation", "incident", "snapshot"},
    "dispatch.case_transitions": {"changes"},
    "dispatch.outbox": {"value"},
    "metrics.case_events": {"data"},
    "intake.accepted_events": {"raw", "normalised"},
    "intake.outbox": {"value"},
    "grid.bundle_versions": {"bundle"},
    "grid.outbox": {"value"},
}
_EXPECTED = {f"{table}.{column}" for table, columns in LZ4_COLUMNS.items() for column in columns}

_COMPRESSION = text(
    "SELECT n.nspname || '.' || c.relname || '.' || a.attname, a.attcompression::text FROM pg_attribute a "
    "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname IN ('intake', 'grid', 'dispatch', 'metrics') AND a.attnum > 0 AND NOT a.attisdropped "
    "AND a.attcompression <> ''"
)
_HAS_LZ4 = text("SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")


async def _compressed_columns(url: str) -> tuple[bool, dict[str, str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            has_lz4 = bool(await conn.scalar(_HAS_LZ4))
            return has_lz4, {name: method for name, method in (await conn.execute(_COMPRESSION)).all()}
    finally:
        await engine.dispose()


async def test_large_columns_are_lz4_on_a_server_built_with_it(database_url: str) -> None:
    has_lz4, methods = await _compressed_columns(database_url)
    assert methods == ({name: "l" for name in _EXPECTED} if has_lz4 else {})


async def test_a_large_value_is_stored_with_lz4_there(database_url: str) -> None:
    """Not only the column's setting: an event over the TOAST threshold is stored compressed with lz4
    (pglz on a server without it). Written in a transaction rolled back, so no relay ever sees it."""
    value = json.dumps([{"matter": "市容环境", "unit": "城管科", "i": i} for i in range(400)]).encode()
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            has_lz4 = bool(await conn.scalar(_HAS_LZ4))
            await conn.commit()
            async with conn.begin() as tx:
                event_id = await conn.scalar(text(
                    "INSERT INTO dispatch.outbox (event_id, topic, event_type, key, value, headers) "
                    "VALUES (gen_random_uuid(), 'case.events', 'case.dispatched', 'k', :v, '[]') RETURNING event_id"
                ), {"v": value})
                method = await conn.scalar(text(
                    "SELECT pg_column_compression(value) FROM dispatch.outbox WHERE event_id = :e"
                ), {"e": event_id})
                await tx.rollback()
    finally:
        await engine.dispose()
    assert method == ("lz4" if has_lz4 else "pglz")


async def test_migrations_run_on_the_embedded_server_without_lz4() -> None:
    """pgserver's PostgreSQL (the embedded default) is built without lz4: the step leaves its columns alone."""
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="zhpt-pg-lz4-")) / "data")
    url = pg.start()
    try:
        await asyncio.to_thread(upgrade_all, url)
        has_lz4, methods = await _compressed_columns(url)
        assert (has_lz4, methods) == (False, {})
    finally:
        pg.stop()
