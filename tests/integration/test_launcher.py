"""``make run``'s launcher owns its embedded parts: Ctrl-C and a dead broker lose nothing.

The launcher (``deploy/run.py``) runs as a user would run it, on this test's database and free
ports; Ctrl-C is SIGINT to its process group, as a terminal sends it. N accepted → N cases.
启动器：Ctrl-C 与代理崩溃均不丢事件。
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shared.embedded import free_port, port_open
from tests.helpers import eventually
from tests.processes import ARTIFACTS, ROOT, new_tag, post_many, wait_for_counts

N = 300


def free_port_base() -> int:
    """Four free ports in a row, below the kernel's ephemeral range (client sockets never take them)."""
    while True:
        base = random.randint(20000, 32000)
        if not any(port_open("127.0.0.1", base + i) for i in range(4)):
            return base


@dataclass
class Launcher:
    database_url: str
    data_dir: Path
    port_base: int
    broker_port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def intake(self) -> str:
        return f"http://127.0.0.1:{self.port_base}"

    @property
    def dispatch(self) -> str:
        return f"http://127.0.0.1:{self.port_base + 1}"

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "ZHPT_DATA_DIR": str(self.data_dir),
            "ZHPT_PORT_BASE": str(self.port_base),
            "TANSU_PORT": str(self.broker_port),
            "OUTBOX_KEEP_INTERVAL_S": "0.5",
            "OUTBOX_RELEASE_GRACE_S": "3",
            "DISPATCH_GRID_RETRY_S": "0.2",
        }
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "deploy" / "run.py")],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()

    def ctrl_c(self) -> int:
        """SIGINT to the launcher's process group, as a terminal's Ctrl-C; waits for it to finish."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)
        code = self.proc.wait(120)
        self.proc = None
        return code

    async def wait_ready(self) -> None:
        async def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, "launcher exited; see launcher.log"
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(timeout=2) as http:
                    return (await http.get(f"{self.dispatch}/readyz")).status_code == 200
            return False

        await eventually(ready, timeout_s=120, every_s=0.3)

    def kill_broker(self) -> None:
        """kill -9 of the embedded broker (a child of the launcher)."""
        found = subprocess.run(
            ["pgrep", "-f", f"tansu broker --listener-url tcp://127.0.0.1:{self.broker_port}"],
            capture_output=True, text=True, check=False,
        ).stdout.split()
        assert found, "embedded broker not found"
        for pid in found:
            os.kill(int(pid), signal.SIGKILL)


@pytest.fixture
def launcher(own_database_url: str, request: pytest.FixtureRequest) -> Iterator[Launcher]:
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"launcher-{request.node.name}.log"
    log_path.unlink(missing_ok=True)
    launched = Launcher(
        log_path=log_path,
        database_url=own_database_url,
        data_dir=Path(tempfile.mkdtemp(prefix="zhpt-run-")),
        port_base=free_port_base(),
        broker_port=free_port(),
    )
    try:
        yield launched
    finally:
        if launched.proc is not None and launched.proc.poll() is None:
            launched.ctrl_c()


async def test_ctrl_c_with_events_in_flight_and_run_again(launcher: Launcher, own_database_url: str) -> None:
    launcher.start()
    await launcher.wait_ready()
    tag = new_tag()
    accepted = await post_many(launcher.intake, tag, N)
    assert len(accepted) == N
    assert launcher.ctrl_c() == 0  # at once: most events are still on their way to dispatch
    launcher.start()
    await launcher.wait_ready()
    counts = await wait_for_counts(own_database_url, tag, N)
    assert counts == {"cases": N, "incidents": N, "duplicate_timeline_rows": 0, "metrics_facts": N}


async def test_embedded_broker_killed_while_posting_is_started_again(
    launcher: Launcher, own_database_url: str
) -> None:
    launcher.start()
    await launcher.wait_ready()
    tag = new_tag()
    accepted = await post_many(launcher.intake, tag, N, while_posting=[None, launcher.kill_broker])
    assert len(accepted) == N
    counts = await wait_for_counts(own_database_url, tag, N)
    assert counts == {"cases": N, "incidents": N, "duplicate_timeline_rows": 0, "metrics_facts": N}
    assert "starting it again" in launcher.log_path.read_text(errors="replace")
