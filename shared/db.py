"""Database access: one PostgreSQL, one schema per service.

A :class:`UnitOfWork` owns the transaction: service functions take the session
as a keyword argument and never commit on their own. Callbacks registered
with :meth:`UnitOfWork.after_commit` run only once the commit succeeded (for
example, waking the outbox relay).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Any

import orjson
from sqlalchemy import MetaData, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    """The metadata of one service: all its tables live in its own schema."""
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def async_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` URLs and use the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(url: str, *, pool_size: int = 10, application_name: str = "zhpt", **kw: Any) -> AsyncEngine:
    """An asyncpg engine that fails fast when the database is unreachable (→ 503, never a hang)."""
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping (it costs a round trip per request): a connection found dead raises a
        # disconnect error, SQLAlchemy invalidates the pool, and the caller answers 503 once.
        pool_pre_ping=False,
        pool_recycle=1800,
        pool_timeout=5,
        connect_args={"timeout": 5, "server_settings": {"application_name": application_name}},
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        **kw,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


#: Exceptions that mean "the database is not there right now" (→ 503 with Retry-After).
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, DBAPIError):
        orig = getattr(exc, "orig", None)
        name = type(orig).__name__ if orig is not None else ""
        return isinstance(exc, OperationalError | InterfaceError) or "Connection" in name or "CannotConnect" in name
    return isinstance(exc, DATABASE_UNAVAILABLE)


class UnitOfWork:
    """One database transaction. ``async with UnitOfWork(sessions) as uow: ... uow.session ...``.

    Commits when the block exits normally, rolls back on an exception.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._after_commit: list[Callable[[], None]] = []
        self.session: AsyncSession

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        await self.session.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                await self.session.commit()
            else:
                await self.session.rollback()
        finally:
            await self.session.close()
        if exc_type is None:
            for callback in self._after_commit:
                callback()


async def ping(engine: AsyncEngine, limit_s: float = 2.0) -> bool:
    """True when the database answers ``SELECT 1`` within ``limit_s`` seconds."""
    try:
        async with asyncio.timeout(limit_s), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
