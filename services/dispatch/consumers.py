"""Dispatch's consumers (thin): ``incident.reported`` → cases (a batch at a time);
``jurisdiction.changed`` → reload.

派遣服务的消费者（薄层）：事件上报 → 立案派遣（按批）；辖区变更 → 重新加载快照。
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.context import DispatchContext
from services.dispatch.grid_client import GridUnavailableError
from services.dispatch.incidents import handle_incidents
from shared.events import EventEnvelope, IncidentReported, JurisdictionChanged
from shared.logging import get_logger
from shared.messaging.consumer import BatchHandler, Handler

log = get_logger(__name__)

#: How long the ``jurisdiction.changed`` handler waits for the grid before reloading in the background.
#: 辖区变更处理等待网格服务的时长（秒），超时后转为后台重试。
RELOAD_WAIT_S = 10.0


def incident_batch_handler(ctx: DispatchContext) -> BatchHandler:
    """``incident.reported`` batches → :func:`handle_incidents` (started only once a snapshot is loaded).

    事件批处理：一批 ``incident.reported`` 一次立案（快照加载后才启动）。Envelopes of other
    types on the topic are ignored. 主题上的其他类型事件忽略。
    """

    async def handle(session: AsyncSession, envelopes: list[EventEnvelope[Any]]) -> None:
        incidents = [
            env for env in envelopes if env.type == "incident.reported" and isinstance(env.data, IncidentReported)
        ]
        if not incidents:
            return
        loaded = ctx.source.current
        if loaded is None:  # the consumer is started after the first load; never here in practice
            raise RuntimeError("no jurisdiction snapshot loaded yet")
        await handle_incidents(
            session=session,
            envelopes=incidents,
            jurisdiction=loaded,
            duplicate_distance_m=ctx.settings.duplicate_distance_m,
            duplicate_window=ctx.duplicate_window,
        )

    return handle


def incident_handler(ctx: DispatchContext) -> Handler:
    """One ``incident.reported`` → the batch handler with one envelope (one code path). 逐条处理（同一代码路径）。"""
    batch = incident_batch_handler(ctx)

    async def handle(session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        await batch(session, [envelope])

    return handle


def jurisdiction_handler(ctx: DispatchContext, reload_in_background: Any) -> Handler:
    """``jurisdiction.changed`` → reload the snapshot unless it is already that new. 辖区变更 → 重新加载。

    ``reload_in_background()`` is called when the grid does not answer in time: the
    message is never dead-lettered because the grid is down. 网格服务暂不可用时转后台重试，不进死信。
    """

    async def handle(session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        change = envelope.data
        if not isinstance(change, JurisdictionChanged):
            return
        source = ctx.source
        wanted = source.county_code or (source.snapshot.county_code if source.snapshot else "")
        if wanted and change.county_code != wanted:
            return
        if source.is_current(change.version, change.rules_version):
            return
        try:
            await asyncio.wait_for(source.reload(), RELOAD_WAIT_S)
        except (GridUnavailableError, TimeoutError) as exc:
            log.warning("jurisdiction reload failed; retrying in the background", error=repr(exc))
            reload_in_background()

    return handle
