"""The platform as real processes, for fault tests: each service a uvicorn process that a test may
kill -9 and start again, like an operator or a crash would (平台的真实进程，用于故障测试).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from shared.db import async_url
from shared.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
BUNDLE = ROOT / "deploy" / "demo" / "county.json"
ADMIN = {"Authorization": "Bearer dev-admin"}
KEY_12345 = {"X-API-Key": "dev-12345"}


def plain_dsn(url: str) -> str:
    return async_url(url).replace("postgresql+asyncpg://", "postgresql://")


def ticket(n: int, tag: str) -> dict[str, Any]:
    """A 12345 ticket in the demo county (青溪镇: devolved 占道经营), unique per ``tag`` and ``n``."""
    return {
        "ticket_no": f"GD-{tag}-{n:06d}",
        "received_at": "2026-11-24T09:30:00+08:00",
        "channel": "phone",
        "appeal_type": "complaint",
        "category_code": "0301",
        "title": "占道经营",
        "content": f"青溪镇人民路菜场门口流动摊贩占道经营，编号{n}",
        "address": "青溪镇人民路菜场门口",
        "location": {"lng": 119.0452, "lat": 29.6021, "crs": "gcj02"},
        "urgency": "normal",
    }


@dataclass
class Platform:
    """Four service processes on free ports over one database and one broker."""

    database_url: str
    bootstrap: str
    label: str = "platform"
    env_extra: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ports = {name: free_port() for name in ("intake", "dispatch", "grid", "metrics")}
        ARTIFACTS.mkdir(exist_ok=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def env(self) -> dict[str, str]:
        credentials = ("STAFF_TOKENS", "INTAKE_API_KEYS", "SERVICE_TOKEN")
        inherited = {k: v for k, v in os.environ.items() if k not in credentials}
        return {
            **inherited,
            "ZHPT_DEV_CREDENTIALS": "true",
            "DATABASE_URL": self.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DISPATCH_GRID_URL": self.url("grid"),
            "METRICS_GRID_URL": self.url("grid"),
            "DISPATCH_METRICS_URL": self.url("metrics"),
            "DISPATCH_GRID_RETRY_S": "0.2",
            "OUTBOX_POLL_INTERVAL_S": "0.1",
            "OUTBOX_KEEP_INTERVAL_S": "0.5",
            "OUTBOX_RELEASE_GRACE_S": "3",
            "LOG_JSON": "true",
            "LOG_LEVEL": "INFO",
            **self.env_extra,
        }

    def start(self, *names: str) -> None:
        for name in names or ("grid", "intake", "metrics", "dispatch"):
            self._spawn(name, name)

    def start_replica(self, key: str, service: str, **env: str) -> None:
        """One more process of ``service`` on its own port (``url(key)``), with ``env`` added: e.g. a
        history import's own metrics (``METRICS_CASE_LANES=bulk``). Stopped with the rest."""
        self.ports[key] = free_port()
        self._spawn(key, service, **env)

    def _spawn(self, key: str, service: str, **env: str) -> None:
        """Start ``service`` as uvicorn on ``ports[key]``, logging to ``<label>-<key>.log``."""
        log = open(ARTIFACTS / f"{self.label}-{key}.log", "ab")
        self.procs[key] = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", f"services.{service}.app:create_app",
             "--host", "127.0.0.1", "--port", str(self.ports[key]), "--no-access-log"],
            cwd=ROOT, env={**self.env(), **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()

    def kill(self, name: str) -> None:
        """kill -9, as a crash would."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self, *names: str) -> None:
        for name in names or tuple(self.procs):
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    async def wait_healthy(self, *names: str, timeout_s: float = 60) -> None:
        async with httpx.AsyncClient(timeout=2) as http:
            for name in names or tuple(self.procs):
                deadline = asyncio.get_running_loop().time() + timeout_s
                while True:
                    if self.procs[name].poll() is not None:
                        raise AssertionError(f"{name} exited; see test-artifacts/{self.label}-{name}.log")
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{self.url(name)}/healthz")).status_code == 200:
                            break
                    if asyncio.get_running_loop().time() > deadline:
                        raise AssertionError(f"{name} not healthy within {timeout_s}s")
                    await asyncio.sleep(0.1)

    async def load_demo_county(self) -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            response = await http.put(
                f"{self.url('grid')}/v1/jurisdiction",
                content=BUNDLE.read_bytes(),
                headers={**ADMIN, "Content-Type": "application/json"},
            )
            assert response.status_code < 300, response.text


async def post_until_accepted(
    http: httpx.AsyncClient, intake_url: str, bodies: list[dict[str, Any]], *, lane: str = "live"
) -> set[str]:
    """Post a batch like a producer that retries until every record is accepted (202/200 per
    item) — through intake restarts, database restarts and broker outages. Returns the event ids.
    ``lane``: intake's live lane or its bulk (history import) lane."""
    while True:
        try:
            response = await http.post(
                f"{intake_url}/v1/events/12345/batch",
                params={"lane": lane},
                json={"events": bodies},
                headers=KEY_12345,
                timeout=30,
            )
        except httpx.HTTPError:
            await asyncio.sleep(0.2)
            continue
        if response.status_code in (503, 502, 500) or response.status_code >= 520:
            await asyncio.sleep(0.2)
            continue
        assert response.status_code in (200, 202, 207), response.text
        results = response.json()["results"]
        assert all(r["status"] in ("accepted", "duplicate") for r in results), results
        return {r["event_id"] for r in results}


async def post_many(
    intake_url: str, tag: str, count: int, *, batch: int = 50, while_posting: Iterable[Any] = (), lane: str = "live"
) -> set[str]:
    """Post ``count`` tickets in batches (in intake's ``lane``); between batches run the next fault step, if any."""
    steps = iter(while_posting)
    accepted: set[str] = set()
    async with httpx.AsyncClient() as http:
        for start in range(0, count, batch):
            bodies = [ticket(n, tag) for n in range(start, min(count, start + batch))]
            accepted |= await post_until_accepted(http, intake_url, bodies, lane=lane)
            step = next(steps, None)
            if step is not None:
                outcome = step()
                if inspect.isawaitable(outcome):
                    await outcome
    return accepted


async def counts(database_url: str, tag: str) -> dict[str, int]:
    """Cases, distinct incidents among them, timeline rows per case duplicated, and metrics facts."""
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        like = f"GD-{tag}-%"
        row = await conn.fetchrow(
            "SELECT count(*) AS cases, count(DISTINCT incident_id) AS incidents FROM dispatch.cases "
            "WHERE source_id LIKE $1",
            like,
        )
        dup_timeline = await conn.fetchval(
            "SELECT count(*) FROM (SELECT t.case_id, t.version, t.event_type FROM dispatch.case_transitions t "
            "JOIN dispatch.cases c ON c.id = t.case_id WHERE c.source_id LIKE $1 "
            "GROUP BY t.case_id, t.version, t.event_type HAVING count(*) > 1) d",
            like,
        )
        facts = await conn.fetchval(
            "SELECT count(*) FROM metrics.case_facts f JOIN dispatch.cases c ON c.id = f.case_id "
            "WHERE c.source_id LIKE $1",
            like,
        )
        return {
            "cases": row["cases"],
            "incidents": row["incidents"],
            "duplicate_timeline_rows": dup_timeline,
            "metrics_facts": facts,
        }
    finally:
        await conn.close()


async def wait_for_counts(database_url: str, tag: str, expected: int, *, timeout_s: float = 120) -> dict[str, int]:
    """Wait until ``expected`` cases and as many metrics facts exist (or time runs out); return the counts."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: dict[str, int] = {}
    while asyncio.get_running_loop().time() < deadline:
        last = await counts(database_url, tag)
        if last["cases"] >= expected and last["metrics_facts"] >= expected:
            break
        await asyncio.sleep(0.5)
    return last


def new_tag() -> str:
    return uuid.uuid4().hex[:8]


def dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
