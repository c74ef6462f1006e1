"""What arrives on ``incident.reported`` 受理事件分发: each kind to its use case, in order (no commit).

``incident.reported`` → :func:`~services.dispatch.incidents.handle_incidents`;
``approval.reported`` → :func:`~services.dispatch.approval_tasks.handle_approvals`;
``alarm.reported`` → :func:`~services.dispatch.alarm_cases.handle_alarms`;
``alarm.cleared`` → :func:`~services.dispatch.alarm_cases.handle_clearings`. The kinds touch
different cases, so they are handled kind by kind — incidents in one call (its duplicate-check
locks taken once), then approvals, then alarms and clearings in the batch's order (a clearing
follows its alarm: one key, one partition) after every alarm key of the batch is locked at once:
locks are always taken in one order (incident keys, then alarm keys, each sorted), so partitions
applied side by side never wait for each other in a cycle. Other types are ignored.
事件、审批、告警分类处理；锁总按同一顺序获取，各分区并行处理不会互相死锁。其他类型忽略。
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from itertools import groupby
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.alarm_cases import handle_alarms, handle_clearings, lock_alarm_keys
from services.dispatch.approval_tasks import handle_approvals
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.incidents import handle_incidents
from shared.events import EventEnvelope

__all__ = ["HANDLED_TYPES", "handle_intake_events"]

#: The event types dispatch acts on. 派遣服务处理的事件类型。
HANDLED_TYPES = frozenset({"incident.reported", "approval.reported", "alarm.reported", "alarm.cleared"})


async def handle_intake_events(
    *,
    session: AsyncSession,
    envelopes: Sequence[EventEnvelope[Any]],
    jurisdiction: LoadedJurisdiction,
    duplicate_distance_m: float,
    duplicate_window: timedelta,
    lane: str = "live",
) -> None:
    """Incidents, then approvals, then alarms and their clearings in order (see the module). 分类处理。

    ``lane``: the intake lane the batch came in; the new incident cases keep it
    (:attr:`CaseRecord.lane`). Approvals and alarms are live work: their cases are live ones.
    批次所在通道，新立事件案件沿用之；审批办件与告警案件属实时工作。"""
    routing: dict[str, Any] = {
        "jurisdiction": jurisdiction,
        "duplicate_distance_m": duplicate_distance_m,
        "duplicate_window": duplicate_window,
    }
    incidents = [e for e in envelopes if e.type == "incident.reported"]
    approvals = [e for e in envelopes if e.type == "approval.reported"]
    alarms = [e for e in envelopes if e.type in ("alarm.reported", "alarm.cleared")]
    if incidents:  # one call: the duplicate-check locks are taken once, in order
        await handle_incidents(session=session, envelopes=incidents, lane=lane, **routing)
    if approvals:
        await handle_approvals(session=session, envelopes=approvals, **routing)
    if alarms:
        await lock_alarm_keys(session=session, envelopes=alarms)
        for kind, group in groupby(alarms, key=lambda e: e.type):
            run = list(group)
            if kind == "alarm.reported":
                await handle_alarms(session=session, envelopes=run, **routing)
            else:
                await handle_clearings(session=session, envelopes=run)
