"""Fixtures that start the real things: a Tansu broker and PostgreSQL.

* PostgreSQL: the machine's at 127.0.0.1:5432 when reachable (or ``TEST_DATABASE_URL``),
  else an embedded PostgreSQL 16 from ``pgserver``. Each test module gets its own
  database, migrated with the services' alembic migrations.
* Kafka: a Tansu broker on a free port per test session (tests that stop the broker
  start their own with :func:`own_broker`).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from shared.db import async_url
from shared.embedded import MACHINE_POSTGRES, EmbeddedPostgres, TansuBroker, can_connect
from shared.messaging.topics import ensure_topics
from shared.migrations import upgrade

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server the tests may create databases on."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    if can_connect(MACHINE_POSTGRES):
        yield MACHINE_POSTGRES
        return
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="zhpt-pg-")) / "data")
    url = pg.start()
    try:
        yield url
    finally:
        pg.stop()


def _plain_dsn(url: str) -> str:
    return async_url(url).replace("postgresql+asyncpg://", "postgresql://")


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database ``name``."""
    head, _, tail = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{tail}" if tail else "")


async def create_database(
    server_url: str, services: tuple[str, ...] = ("intake", "grid", "dispatch", "metrics")
) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_plain_dsn(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(server_url, name)
    for service in services:
        await asyncio.to_thread(upgrade, service, url)
    return url


async def drop_database(server_url: str, url: str) -> None:
    name = url.partition("?")[0].rsplit("/", 1)[1]
    conn = await asyncpg.connect(_plain_dsn(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test module."""
    url = await create_database(postgres_server_url)
    try:
        yield url
    finally:
        await drop_database(postgres_server_url, url)


@pytest.fixture
async def own_database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test (no other app instance relays from it)."""
    url = await create_database(postgres_server_url)
    try:
        yield url
    finally:
        await drop_database(postgres_server_url, url)


@pytest.fixture(scope="session")
def kafka() -> Iterator[TansuBroker]:
    ARTIFACTS.mkdir(exist_ok=True)
    broker = TansuBroker(log_path=ARTIFACTS / "tansu-session.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def module_broker(request: pytest.FixtureRequest) -> Iterator[TansuBroker]:
    """A broker of this module's own: a running platform whose dispatch starts a fresh consumer group
    reads its topic from the beginning, and must not find other modules' reports there (they would
    become cases here, and a report of this module could merge into one of them)."""
    ARTIFACTS.mkdir(exist_ok=True)
    broker = TansuBroker(log_path=ARTIFACTS / f"tansu-{request.module.__name__.rsplit('.', 1)[-1]}.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def own_broker() -> Iterator[TansuBroker]:
    """A broker of this test's own, which it may stop and restart."""
    ARTIFACTS.mkdir(exist_ok=True)
    broker = TansuBroker(log_path=ARTIFACTS / "tansu-own.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


async def read_topic(
    bootstrap: str, topic: str, *, expect: int, timeout_s: float = 20.0, from_beginning: bool = True
) -> list[Any]:
    """Read ``expect`` records of ``topic`` (no group, all partitions); fails after ``timeout_s``."""
    await ensure_topics(bootstrap, [topic])
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(records) < expect:
                batch = await consumer.getmany(timeout_ms=200)
                for msgs in batch.values():
                    records.extend(msgs)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return records
