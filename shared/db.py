"""Database access: one PostgreSQL, one schema per service.

A :class:`UnitOfWork` owns the transaction: service functions take the session
as a keyword argument and never commit on their own. Callbacks registered
with :meth:`UnitOfWork.after_commit` run only once the commit succeeded (for
example, waking the outbox relay, counting in telemetry, or reloading something
over the network, which never happens inside the transaction); it is the one
place that runs code after a commit. 工作单元是唯一的"提交后"挂钩：回调仅在提交成功后执行，回滚时丢弃。
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any

import asyncpg
import orjson
from sqlalchemy import MetaData, event, text
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
        # No overflow: an overflow connection is closed when it is returned, so bursts above the
        # pool would pay connect + type introspection + statement preparation per request (seen
        # as ~20 % of intake's CPU under 50 concurrent clients). Callers wait for a pooled one.
        # Nothing holds one connection while asking for another (the suite runs with a pool of 1).
        max_overflow=0,
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


def lower_backend_priority(engine: AsyncEngine, nice: int, *, idle: bool = False) -> None:
    """Run the database backends of ``engine``'s connections at CPU priority ``nice`` (a history import's
    processes: their PostgreSQL work then yields the CPU to the live processes', as they do); with
    ``idle``, under the idle scheduling policy (``SCHED_IDLE``): they get a core only when no other
    process wants it, so the live processes' work does not queue behind the import's for the CPU (the
    locks and the WAL both write still are shared).

    Only where PostgreSQL runs on this host as this user (the embedded default); elsewhere the
    operating system refuses and nothing changes. 历史导入进程的数据库后端以较低 CPU 优先级运行
    （``idle``：空闲调度策略，仅在无其他进程需要 CPU 时运行；仅当 PostgreSQL 与本进程同机同用户时生效，否则无变化）。"""

    @event.listens_for(engine.sync_engine, "connect")
    def _lower(dbapi_connection: Any, _record: Any) -> None:
        # The driver knows its backend's pid: no statement (a statement here would open the adapter's
        # transaction, and the connection's first unit of work would then only be a savepoint in it).
        # 驱动已知后端进程号：此处不执行语句（否则会开启适配器事务，首个工作单元仅成为其中的保存点）。
        pid = int(dbapi_connection.driver_connection.get_server_pid())
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, max(nice, os.getpriority(os.PRIO_PROCESS, pid)))
        if idle:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))


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
    """True when ``exc`` (or what it wraps) means the database is away for now, not that the
    statement is wrong: connection errors, SQLSTATE class 08 (connection exception) and 57P
    (shutting down, starting up — ``CannotConnectNowError`` — or crashed). → 503 + Retry-After.
    数据库暂不可用（连接异常、正在关闭或启动）而非语句错误。"""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, DATABASE_UNAVAILABLE) or isinstance(current, DRIVER_UNAVAILABLE):
            return True
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(state, str) and (state.startswith("08") or state.startswith("57P")):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


#: asyncpg errors meaning the connection or the server is gone (the pooled connection is discarded).
DRIVER_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


@contextlib.asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """The pooled asyncpg connection itself, for hot paths (驱动层连接，用于热点路径).

    SQLAlchemy's per-statement work (session state, compilation, result proxies, the greenlet
    hop) costs more CPU than the database round trip for small statements; here the statement
    goes straight to asyncpg (prepared once per connection, cached). The connection is in
    autocommit: one statement is one transaction, or open ``conn.transaction()`` for several.
    Same pool as the engine. A lost connection is discarded from the pool and surfaces as
    :class:`~sqlalchemy.exc.OperationalError`, so callers answer 503 as for any other statement.
    JSONB parameters go in as JSON text and come out decoded (the engine's codec).
    """
    async with engine.connect() as conn:
        driver: asyncpg.Connection | None = (await conn.get_raw_connection()).driver_connection
        assert driver is not None, "the engine's pool hands out asyncpg connections"
        try:
            yield driver
        except Exception as exc:
            # A connection the server closed under us (restart, failover, terminated backend) says
            # "connection is closed" on its next use, whatever the error class.
            if not (isinstance(exc, DRIVER_UNAVAILABLE) or driver.is_closed()):
                raise
            await conn.invalidate(exc)
            raise OperationalError("(driver connection)", None, exc, connection_invalidated=True) from exc


class UnitOfWork:
    """One database transaction. ``async with UnitOfWork(sessions) as uow: ... uow.session ...``.

    Commits when the block exits normally, rolls back on an exception. Callbacks given to
    :meth:`after_commit` run in order once the commit succeeded; on a rollback (or a failed
    commit) they are dropped. 正常退出时提交，异常时回滚；提交后回调仅在提交成功后按序执行。
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._after_commit: list[Callable[[], None]] = []
        self.session: AsyncSession

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this unit of work has committed; never if it rolls back. 提交后执行。"""
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
