"""Dispatch's ``jurisdiction.changed`` handler makes no network call inside the consumer's
transaction: it asks for the reload once the transaction has committed, and the snapshot source
reloads on its own task. A rolled-back transaction asks for nothing.

辖区变更处理器不在消费者事务内发起网络调用：事务提交后才请求重新加载，由快照源自己的任务完成；回滚则不请求。
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.dispatch.consumers import jurisdiction_handler
from services.dispatch.context import DispatchContext
from services.dispatch.grid_client import JurisdictionSource
from services.dispatch.models import metadata
from shared.db import UnitOfWork
from shared.events import EventEnvelope, JurisdictionChanged, make_envelope
from shared.service import ServiceRuntime
from tests.helpers import eventually
from tests.integration.test_dispatch_support import dispatch_settings

#: Nothing listens there: every fetch fails at once, and says so in ``last_error``.
NOWHERE = "http://127.0.0.1:1"


def changed(version: int) -> EventEnvelope[JurisdictionChanged]:
    data = JurisdictionChanged(county_code="330127", version=version, rules_version=1, digest="d", change="bundle")
    return make_envelope(event_type="jurisdiction.changed", data=data, source="/grid", correlation_id="c",
                         subject="330127", time=datetime.now(UTC))


@pytest.fixture
async def ctx(database_url: str) -> AsyncIterator[DispatchContext]:
    settings = dispatch_settings(database_url, "127.0.0.1:1", grid_url=NOWHERE)
    runtime = ServiceRuntime(settings, service="dispatch", metadata=metadata)
    source = JurisdictionSource(grid_url=NOWHERE, token="t", county_code="330127")
    keeper = asyncio.create_task(source.keep_current(0.05))
    try:
        yield DispatchContext(runtime=runtime, settings=settings, source=source)
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await runtime.engine.dispose()


async def test_the_reload_is_asked_for_after_the_commit(ctx: DispatchContext) -> None:
    handle = jurisdiction_handler(ctx)
    async with UnitOfWork(ctx.runtime.sessions) as uow:
        await handle(uow, changed(2))
        await asyncio.sleep(0.2)
        assert ctx.source.last_error is None  # nothing fetched while the transaction is open

    async def fetched() -> bool:
        return "unreachable" in (ctx.source.last_error or "")

    await eventually(fetched, timeout_s=5)


async def test_a_rolled_back_transaction_asks_for_no_reload(ctx: DispatchContext) -> None:
    handle = jurisdiction_handler(ctx)
    with pytest.raises(RuntimeError, match="later statement failed"):
        async with UnitOfWork(ctx.runtime.sessions) as uow:
            await handle(uow, changed(2))
            raise RuntimeError("a later statement failed")
    await asyncio.sleep(0.3)
    assert ctx.source.last_error is None
