"""Nothing accepted is ever lost: the faults of a real deployment, counted exactly.

Each test runs the four services as real processes over a real PostgreSQL and a real Tansu broker
(which keeps everything in memory: a restart forgets messages, topics and committed offsets), posts
tickets like a producer that retries until each is accepted, causes one fault, and then counts:
N accepted → N cases, no duplicate case or timeline row, and as many metrics facts as cases.
不丢失：真实进程、真实代理与数据库下的故障，逐一精确计数。
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import asyncpg
import httpx
import pytest

from shared.embedded import EmbeddedPostgres, TansuBroker
from tests.conftest import create_database
from tests.helpers import eventually
from tests.processes import Platform, new_tag, plain_dsn, post_many, wait_for_counts

N = 400


def label(request: pytest.FixtureRequest) -> str:
    """Log file prefix under test-artifacts/ for this test's processes."""
    return "fault-" + request.node.name.replace("[", "-").rstrip("]")


def exact(n: int) -> dict[str, int]:
    return {"cases": n, "incidents": n, "duplicate_timeline_rows": 0, "metrics_facts": n}


async def wait_published(database_url: str, schema: str) -> None:
    """Until the relay has every row acked by the broker (nothing pending)."""
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:

        async def none_pending() -> bool:
            return not await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox_pending")

        await eventually(none_pending, timeout_s=60)
    finally:
        await conn.close()


async def outbox_rows(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        return {s: await conn.fetchval(f"SELECT count(*) FROM {s}.outbox") for s in ("intake", "dispatch")}
    finally:
        await conn.close()


async def readiness(url: str) -> dict[str, object]:
    async with httpx.AsyncClient(timeout=5) as http:
        return dict((await http.get(f"{url}/readyz")).json())


async def test_broker_forgets_what_it_acked_before_anyone_consumed(
    own_database_url: str, own_broker: TansuBroker, request: pytest.FixtureRequest
) -> None:
    """Dispatch down; every ticket published and acked; the broker restarts empty; dispatch starts."""
    platform = Platform(own_database_url, own_broker.bootstrap, label=label(request))
    tag = new_tag()
    try:
        platform.start("grid", "intake")
        await platform.wait_healthy("grid", "intake")
        await platform.load_demo_county()
        accepted = await post_many(platform.url("intake"), tag, N)
        assert len(accepted) == N
        await wait_published(own_database_url, "intake")
        own_broker.kill()
        own_broker.start()  # same port, nothing in it
        platform.start("metrics", "dispatch")
        assert await wait_for_counts(own_database_url, tag, N) == exact(N)

        # Once every consumer group has committed past them, the outboxes let the rows go.
        async def released() -> bool:
            return await outbox_rows(own_database_url) == {"intake": 0, "dispatch": 0}

        await eventually(released, timeout_s=60)
    finally:
        platform.stop()


async def test_broker_restarts_while_services_run(
    own_database_url: str, own_broker: TansuBroker, request: pytest.FixtureRequest
) -> None:
    """The broker is killed mid-load and started again 2 s later; no service is restarted."""
    platform = Platform(own_database_url, own_broker.bootstrap, label=label(request))
    tag = new_tag()

    async def outage() -> None:
        own_broker.kill()

        async def intake_degraded() -> bool:
            report = await readiness(platform.url("intake"))
            return report["status"] == "degraded"

        await eventually(intake_degraded, timeout_s=30)  # readiness says so while the broker is away
        await asyncio.sleep(2)
        own_broker.start()

    try:
        platform.start()
        await platform.wait_healthy()
        await platform.load_demo_county()
        accepted = await post_many(platform.url("intake"), tag, N, while_posting=[None, None, outage])
        assert len(accepted) == N
        assert await wait_for_counts(own_database_url, tag, N) == exact(N)

        async def consuming_again() -> bool:
            report = await readiness(platform.url("dispatch"))
            return report["status"] == "ready"

        await eventually(consuming_again, timeout_s=60)
    finally:
        platform.stop()


@pytest.mark.parametrize("service", ["intake", "dispatch", "metrics"])
async def test_kill_9_of_a_service_mid_load(
    own_database_url: str, own_broker: TansuBroker, service: str, request: pytest.FixtureRequest
) -> None:
    platform = Platform(own_database_url, own_broker.bootstrap, label=label(request))
    tag = new_tag()

    async def crash() -> None:
        platform.kill(service)
        platform.start(service)

    try:
        platform.start()
        await platform.wait_healthy()
        await platform.load_demo_county()
        accepted = await post_many(platform.url("intake"), tag, N, while_posting=[None, crash])
        assert len(accepted) == N
        assert await wait_for_counts(own_database_url, tag, N) == exact(N)
    finally:
        platform.stop()


async def test_database_restart_mid_load(own_broker: TansuBroker, request: pytest.FixtureRequest) -> None:
    """PostgreSQL stops and starts again while tickets arrive: 503s, then everything lands."""
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="zhpt-pg-restart-")) / "data")
    server = pg.start()
    try:
        database_url = await create_database(server)
        platform = Platform(database_url, own_broker.bootstrap, label=label(request))
        tag = new_tag()

        async def restart() -> None:
            pg.stop()
            await asyncio.sleep(1)
            pg.start()

        try:
            platform.start()
            await platform.wait_healthy()
            await platform.load_demo_county()
            accepted = await post_many(platform.url("intake"), tag, N, while_posting=[None, None, restart])
            assert len(accepted) == N
            assert await wait_for_counts(database_url, tag, N) == exact(N)
        finally:
            platform.stop()
    finally:
        pg.stop()
