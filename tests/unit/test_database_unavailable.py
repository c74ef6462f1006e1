"""A database that is starting up, shutting down or unreachable answers 503 with Retry-After,
whatever wraps the driver's error; a wrong statement stays a 500 (数据库暂不可用 → 503)."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.db import is_database_unavailable, service_metadata
from shared.service import ServiceRuntime, create_service_app
from shared.settings import ServiceSettings


class Wrapped(Exception):
    """Stands where SQLAlchemy's asyncpg adapter puts its own error class."""


def wrapped(exc: BaseException) -> DBAPIError:
    adapter = Wrapped(str(exc))
    adapter.__cause__ = exc
    return DBAPIError("SELECT 1", None, adapter)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        ConnectionRefusedError(111, "Connection refused"),
    ],
)
def test_unavailable_whatever_wraps_it(error: BaseException) -> None:
    assert is_database_unavailable(error)
    assert is_database_unavailable(wrapped(error))


def test_a_wrong_statement_is_not_unavailability() -> None:
    duplicate = asyncpg.exceptions.UniqueViolationError("duplicate key")
    assert not is_database_unavailable(duplicate)
    assert not is_database_unavailable(IntegrityError("INSERT", None, duplicate))


async def test_starting_up_answers_503_with_retry_after() -> None:
    runtime = ServiceRuntime(
        ServiceSettings(database_url="postgresql://nobody@127.0.0.1:1/none", log_json=False, dev_credentials=True),
        service="probe",
        metadata=service_metadata("probe"),
    )
    router = APIRouter()

    @router.get("/starting")
    async def starting() -> dict[str, str]:
        raise wrapped(asyncpg.exceptions.CannotConnectNowError("the database system is starting up"))

    @router.get("/raw")
    async def raw() -> dict[str, str]:
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    app = create_service_app(runtime, title="probe", description="probe", routers=[router])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as client:
        for path in ("/starting", "/raw"):
            response = await client.get(path)
            assert response.status_code == 503, path
            assert response.headers["retry-after"] == "5"
    await runtime.engine.dispose()
