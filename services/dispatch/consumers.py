"""Dispatch's consumers (thin): ``incident.reported`` → cases (a batch at a time);
``jurisdiction.changed`` → reload (after the commit, on the snapshot source's own task).

派遣服务的消费者（薄层）：事件上报 → 立案派遣（按批）；辖区变更 → 提交后重新加载快照。
"""

from __future__ import annotations

from typing import Any

from services.dispatch.context import DispatchContext
from services.dispatch.intake_events import HANDLED_TYPES, handle_intake_events
from shared.db import UnitOfWork
from shared.events import EventEnvelope, JurisdictionChanged
from shared.messaging.consumer import BatchHandler, Handler


def incident_batch_handler(ctx: DispatchContext, *, lane: str = "live") -> BatchHandler:
    """``incident.reported`` batches → :func:`handle_incidents` (started only once a snapshot is loaded).

    事件批处理：一批 ``incident.reported`` 一次立案（快照加载后才启动）。Approvals and alarms on
    the topic go to their own use cases (:mod:`services.dispatch.intake_events`); other types are
    ignored. 审批办件与监测告警交各自用例处理；其他类型忽略。``lane``: the intake lane consumed
    (the cases keep it). 所消费的通道（案件沿用）。
    """

    async def handle(uow: UnitOfWork, envelopes: list[EventEnvelope[Any]]) -> None:
        if not any(env.type in HANDLED_TYPES for env in envelopes):
            return
        loaded = ctx.source.current
        if loaded is None:  # the consumer is started after the first load; never here in practice
            raise RuntimeError("no jurisdiction snapshot loaded yet")
        await handle_intake_events(
            session=uow.session,
            envelopes=envelopes,
            jurisdiction=loaded,
            duplicate_distance_m=ctx.settings.duplicate_distance_m,
            duplicate_window=ctx.duplicate_window,
            lane=lane,
        )

    return handle


def incident_handler(ctx: DispatchContext) -> Handler:
    """One ``incident.reported`` → the batch handler with one envelope (one code path). 逐条处理（同一代码路径）。"""
    batch = incident_batch_handler(ctx)

    async def handle(uow: UnitOfWork, envelope: EventEnvelope[Any]) -> None:
        await batch(uow, [envelope])

    return handle


def jurisdiction_handler(ctx: DispatchContext) -> Handler:
    """``jurisdiction.changed`` → reload the snapshot unless it is already that new. 辖区变更 → 重新加载。

    The handler only decides; the reload is asked for once the transaction (which records the
    event as processed) has committed, and runs on the source's own task
    (:meth:`~services.dispatch.grid_client.JurisdictionSource.keep_current`), retried until the
    grid answers: no HTTP call inside the transaction, and the message is never dead-lettered
    because the grid is down. 处理器只做判断；事务提交后请求重新加载，由快照源自己的任务完成并重试，
    事务内不发起网络调用，网格服务不可用时也不进死信。
    """

    async def handle(uow: UnitOfWork, envelope: EventEnvelope[Any]) -> None:
        change = envelope.data
        if not isinstance(change, JurisdictionChanged):
            return
        source = ctx.source
        wanted = source.county_code or (source.snapshot.county_code if source.snapshot else "")
        if wanted and change.county_code != wanted:
            return
        if source.is_current(change.version, change.rules_version):
            return
        uow.after_commit(source.request_reload)

    return handle
