"""The PostgreSQL settings the platform's server runs with (数据库写入调优): one table, pure.

PostgreSQL's own defaults suit a small shared machine: 128 MB of shared buffers, 4 MB of WAL
buffers, a checkpoint every 1 GB of WAL or 5 minutes. The platform writes about 20–30 KB of WAL per
report under a history import (历史导入: the case row and its indexes, the timeline, three outboxes,
metrics' event and fact, the lifecycle's updates), a checkpoint every ~20 s on the defaults, each
followed by a *full-page image* of every page first touched after it; and the WAL buffers fill, so
a backend writes the WAL itself, a live report's commit among them.

Measured on ``bench/replay.py`` (300 k reports, the operator acting on a fifth of the cases,
PostgreSQL 15, autovacuum on; two runs each, alternating): on the defaults 9.5–9.7 GB of WAL,
758–843 k full-page images, the WAL buffers full 30–56 k times; with these settings 6.7 GB,
172–226 k, never. The platform's CPU per report and its rates were the same within the machine's
noise (2,411–2,670 µs against 2,419–2,563 µs on a two-core machine with a fast local disk): what
the settings save is the database host's disk writes (and a WAL archive's or replica's traffic),
a third of them.

Used by the embedded server (:class:`shared.embedded.EmbeddedPostgres`, through :func:`changes`)
and written out in ``docker-compose.yml``'s ``postgres`` command (``tests/integration/
test_compose.py`` keeps the two the same). A value the server does not offer (pgserver's
PostgreSQL is built without lz4) is left at the server's own.
平台数据库的写入调优设置：共享缓冲 1GB、WAL 缓冲 64MB、检查点间隔拉长、WAL 全页镜像 lz4 压缩。
嵌入式数据库与 docker-compose 的 postgres 使用同一张表（测试保证一致）；服务器不支持的取值保持默认。
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["WRITE_TUNED", "ServerSetting", "SettingChanges", "changes", "server_flags"]

#: Setting → value, each written as ``SHOW`` prints it (so a server already tuned compares equal).
#: 设置 → 取值（与 SHOW 的输出格式一致）。
WRITE_TUNED: Mapping[str, str] = {
    # The working set of an import's last minutes (cases, timelines, outboxes) in memory. 共享缓冲。
    "shared_buffers": "1GB",
    # Room for the import's WAL between flushes: never full in a 300 k replay (30–56 k times at 4 MB). WAL 缓冲。
    "wal_buffers": "64MB",
    # A checkpoint every ~2 GB of WAL (max_wal_size / 1.9) or 15 min, not ~0.5 GB: fewer full-page images.
    # 检查点间隔。
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    # The full-page images still written, compressed (lz4 where the server has it). 全页镜像压缩。
    "wal_compression": "lz4",
}


@dataclass(frozen=True, slots=True)
class ServerSetting:
    """One row of ``pg_settings`` as the server reports it. 服务器上的一项设置。"""

    name: str
    shown: str  # current_setting(name): how SHOW prints it
    context: str  # 'postmaster': takes effect only after a restart
    allowed: Sequence[str] = ()  # enumvals, for an enum setting


@dataclass(frozen=True, slots=True)
class SettingChanges:
    """What to set on a server, and whether it must restart for it. 需修改的设置与是否需要重启。"""

    values: Mapping[str, str]
    restart: bool


def changes(current: Sequence[ServerSetting], wanted: Mapping[str, str] = WRITE_TUNED) -> SettingChanges:
    """The settings of ``wanted`` the server does not run with yet, leaving out a value it does not
    offer (an enum value missing from its ``enumvals``) or a setting it does not know. 返回尚未生效的设置。"""
    by_name = {setting.name: setting for setting in current}
    values: dict[str, str] = {}
    restart = False
    for name, value in wanted.items():
        setting = by_name.get(name)
        if setting is None or setting.shown == value or (setting.allowed and value not in setting.allowed):
            continue
        values[name] = value
        restart = restart or setting.context == "postmaster"
    return SettingChanges(values=values, restart=restart)


def server_flags(wanted: Mapping[str, str] = WRITE_TUNED) -> list[str]:
    """The ``postgres`` command-line flags for ``wanted`` (``-c name=value``, in order), as
    ``docker-compose.yml`` lists them. 对应的 postgres 命令行参数。"""
    return [flag for name, value in wanted.items() for flag in ("-c", f"{name}={value}")]
