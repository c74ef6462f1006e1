"""The embedded server runs with the platform's settings (shared.postgres_tuning.WRITE_TUNED) from
its first start, and keeps them when started again. 嵌入式数据库从首次启动起即使用平台调优设置。"""

from __future__ import annotations

import tempfile
from pathlib import Path

import asyncpg

from shared.embedded import EmbeddedPostgres
from shared.postgres_tuning import WRITE_TUNED

_SETTINGS = (
    "SELECT name, current_setting(name) AS shown, coalesce(enumvals, '{}') AS allowed FROM pg_settings "
    "WHERE name = ANY($1::text[])"
)


async def _settings(url: str) -> dict[str, tuple[str, list[str]]]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(_SETTINGS, list(WRITE_TUNED))
    finally:
        await conn.close()
    return {r["name"]: (r["shown"], list(r["allowed"])) for r in rows}


def _expected(settings: dict[str, tuple[str, list[str]]]) -> dict[str, str]:
    """WRITE_TUNED, but a value the server does not offer (lz4 on pgserver) at the server's own."""
    return {
        name: value if not allowed or value in allowed else shown
        for name, (shown, allowed) in settings.items()
        for value in [WRITE_TUNED[name]]
    }


async def test_the_embedded_server_runs_write_tuned_from_its_first_start() -> None:
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="zhpt-pg-tuned-")) / "data")
    url = pg.start()
    try:
        first = await _settings(url)
        assert set(first) == set(WRITE_TUNED)
        assert {name: shown for name, (shown, _) in first.items()} == _expected(first)
        assert first["shared_buffers"][0] == WRITE_TUNED["shared_buffers"]  # a restart-only setting took
    finally:
        pg.stop()
    url = pg.start()  # the same data directory again: nothing to change, the same settings
    try:
        assert await _settings(url) == first
        await _execute(url, "ALTER SYSTEM RESET max_wal_size", "SELECT pg_reload_conf()")  # as an older data dir
        assert (await _settings(url))["max_wal_size"][0] != WRITE_TUNED["max_wal_size"]
    finally:
        pg.stop()
    url = pg.start()  # a setting that takes effect on reload is set again without a restart
    try:
        assert await _settings(url) == first
    finally:
        pg.stop()


async def _execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()
