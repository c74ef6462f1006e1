"""The unit of work is the one after-commit owner: its callbacks run once the commit succeeded,
in order, and never when the transaction rolls back or the commit fails.

工作单元是唯一的"提交后"挂钩：提交成功后按序执行回调，回滚或提交失败时绝不执行。"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import UnitOfWork, create_engine, lower_backend_priority, session_factory


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url, pool_size=2)
    async with eng.begin() as conn:
        await conn.execute(text("CREATE SCHEMA IF NOT EXISTS uow_test"))
        await conn.execute(text("CREATE TABLE IF NOT EXISTS uow_test.things (id int PRIMARY KEY)"))
        # Checked at commit: a transaction that breaks it fails in commit(), not in the insert.
        await conn.execute(text(
            "CREATE TABLE IF NOT EXISTS uow_test.deferred (id int PRIMARY KEY, "
            "ref int NOT NULL REFERENCES uow_test.things (id) DEFERRABLE INITIALLY DEFERRED)"
        ))
    yield eng
    await eng.dispose()


async def visible(engine: AsyncEngine, thing: int) -> bool:
    async with engine.connect() as conn:
        return bool((await conn.execute(text("SELECT count(*) FROM uow_test.things WHERE id = :i"), {"i": thing}))
                    .scalar_one())


async def test_callbacks_run_in_order_after_the_commit(engine: AsyncEngine) -> None:
    seen: list[str] = []
    sessions = session_factory(engine)
    async with UnitOfWork(sessions) as uow:
        await uow.session.execute(text("INSERT INTO uow_test.things VALUES (1)"))
        uow.after_commit(lambda: seen.append("first"))
        uow.after_commit(lambda: seen.append("second"))
        assert seen == []  # nothing runs inside the transaction
        assert not await visible(engine, 1)
    assert seen == ["first", "second"]
    assert await visible(engine, 1)


async def test_no_callback_on_rollback(engine: AsyncEngine) -> None:
    seen: list[str] = []
    sessions = session_factory(engine)
    with pytest.raises(RuntimeError, match="handler broke"):
        async with UnitOfWork(sessions) as uow:
            await uow.session.execute(text("INSERT INTO uow_test.things VALUES (2)"))
            uow.after_commit(lambda: seen.append("rolled back"))
            raise RuntimeError("handler broke")
    assert seen == []
    assert not await visible(engine, 2)


async def test_no_callback_when_the_commit_itself_fails(engine: AsyncEngine) -> None:
    seen: list[str] = []
    sessions = session_factory(engine)
    with pytest.raises(Exception, match="foreign key"):
        async with UnitOfWork(sessions) as uow:
            await uow.session.execute(text("INSERT INTO uow_test.deferred VALUES (1, 404)"))
            uow.after_commit(lambda: seen.append("commit failed"))
    assert seen == []


async def test_a_history_import_process_runs_its_database_backends_at_its_lower_priority(
    database_url: str, engine: AsyncEngine
) -> None:
    """``DB_BACKEND_NICE``: the backends of the engine's connections run at that CPU priority (PostgreSQL
    runs on this host in the suite, as in the embedded default). 导入进程的数据库后端以较低优先级运行。"""
    import os

    from shared.db import driver_connection

    low, plain = create_engine(database_url, pool_size=1), create_engine(database_url, pool_size=1)
    lower_backend_priority(low, 7)
    try:
        pids = []
        for eng in (low, plain):
            async with eng.connect() as conn:
                pids.append(int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
        assert os.getpriority(os.PRIO_PROCESS, pids[0]) == 7
        assert os.getpriority(os.PRIO_PROCESS, pids[1]) < 7
        assert os.sched_getscheduler(pids[0]) == os.sched_getscheduler(pids[1]) == os.SCHED_OTHER
        # A fresh connection's first transaction commits (the priority is set without opening one):
        # on the driver connection, as intake writes, and through a unit of work.
        # 新连接的首个事务照常提交（设置优先级时不开启事务）。
        await low.dispose()
        async with driver_connection(low) as conn, conn.transaction():
            await conn.execute("INSERT INTO uow_test.things (id) VALUES (7001) ON CONFLICT DO NOTHING")
        await low.dispose()
        async with UnitOfWork(session_factory(low)) as uow:
            await uow.session.execute(text("INSERT INTO uow_test.things (id) VALUES (7002) ON CONFLICT DO NOTHING"))
        await low.dispose()
        async with plain.connect() as conn:
            found = (
                await conn.execute(text("SELECT count(*) FROM uow_test.things WHERE id IN (7001, 7002)"))
            ).scalar_one()
        assert found == 2
        async with plain.begin() as conn:
            await conn.execute(text("DELETE FROM uow_test.things WHERE id IN (7001, 7002)"))
    finally:
        await low.dispose()
        await plain.dispose()


async def test_a_history_import_process_can_run_its_database_backends_only_on_an_idle_core(database_url: str) -> None:
    """``DB_BACKEND_IDLE``: the backends run under ``SCHED_IDLE`` (a core only when no other process wants
    it); the other engines' backends keep the normal policy. 导入进程的数据库后端以空闲调度策略运行。"""
    import os

    idle, plain = create_engine(database_url, pool_size=1), create_engine(database_url, pool_size=1)
    lower_backend_priority(idle, 0, idle=True)
    try:
        pids = []
        for eng in (idle, plain):
            async with eng.connect() as conn:
                pids.append(int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
        assert os.sched_getscheduler(pids[0]) == os.SCHED_IDLE
        assert os.sched_getscheduler(pids[1]) == os.SCHED_OTHER
        async with UnitOfWork(session_factory(idle)) as uow:  # and it still works
            assert (await uow.session.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await idle.dispose()
        await plain.dispose()
