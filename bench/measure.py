"""What the benches measure with 压测共用度量: percentiles, a process tree's CPU and memory (from
/proc), and the PostgreSQL server to run against (the machine's, ``TEST_DATABASE_URL``, or an
embedded one for the bench's lifetime).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from shared.embedded import MACHINE_POSTGRES, EmbeddedPostgres, can_connect_async
from shared.postgres_tuning import WRITE_TUNED


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children (uvicorn workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1] is the parent pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def cpu_by_command(kinds: dict[str, str]) -> dict[str, float]:
    """CPU seconds used so far, per kind, by every process that matches the kind's pattern: a pattern
    with a space is looked for anywhere in the command line (``"tansu broker"``); another names the
    executable, or a process retitled ``<pattern>: …`` (PostgreSQL's backends). Whole machine: a
    PostgreSQL server counts every database's backends (during a bench, the bench's are the busy ones)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = dict.fromkeys(kinds, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        for kind, pattern in kinds.items():
            name = command.split(" ", 1)[0].rsplit("/", 1)[-1]
            if (pattern in command) if " " in pattern else (name == pattern or command.startswith(pattern + ":")):
                # with the children it has reaped (cutime, cstime): a PostgreSQL backend that exited
                # during the run counts in its postmaster's 含已退出的子进程（如已断开的数据库后端）
                total[kind] += sum(int(f) for f in fields[11:15]) / tick
                break
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@contextlib.asynccontextmanager
async def postgres_server() -> AsyncIterator[str]:
    """A PostgreSQL server URL the bench may create databases on: ``TEST_DATABASE_URL``, else the
    machine's at 127.0.0.1:5432, else an embedded PostgreSQL stopped afterwards."""
    server_url = os.environ.get("TEST_DATABASE_URL") or (
        MACHINE_POSTGRES if await can_connect_async(MACHINE_POSTGRES) else ""
    )
    if server_url:
        yield server_url
        return
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp()) / "pg")
    try:
        yield pg.start()
    finally:
        pg.stop()


async def server_settings(server_url: str) -> str:
    """The server's version and the settings a run's figures depend on (the platform's write
    tuning, autovacuum), to print beside them: the same bench differs by tens of per cent between a
    server on PostgreSQL's defaults and a tuned one. 服务器版本与影响结果的设置。"""
    import asyncpg

    conn = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        version = await conn.fetchval("SHOW server_version")
        rows = await conn.fetch(
            "SELECT name, current_setting(name) AS shown FROM pg_settings WHERE name = ANY($1::text[]) ORDER BY name",
            [*WRITE_TUNED, "autovacuum"],
        )
    finally:
        await conn.close()
    settings = {r["name"]: r["shown"] for r in rows}
    tuned = all(settings.get(name) == value for name, value in WRITE_TUNED.items())
    which = "the platform's settings" if tuned else "not all of the platform's settings"
    shown = ", ".join(f"{name}={value}" for name, value in settings.items())
    return f"PostgreSQL {version.split()[0]} ({which}): {shown}"
