"""What arrives on ``incident.reported`` 受理事件分发: each kind to its use case, in order (no commit).

``incident.reported`` → :func:`~services.dispatch.incidents.handle_incidents`;
``approval.reported`` → :func:`~services.dispatch.approval_tasks.handle_approvals`;
``alarm.reported`` → :func:`~services.dispatch.alarm_cases.handle_alarms`;
``alarm.cleared`` → :func:`~services.dispatch.alarm_cases.handle_clearings`. A batch is cut into
runs of one kind, handled in the batch's order (an alarm's clearing follows its alarm: one key,
one partition). Other types are ignored. 按类型分段、按序交给各用例；其他类型忽略。
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from itertools import groupby
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.alarm_cases import handle_alarms, handle_clearings
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
) -> None:
    """Each run of one kind to its use case, in order. 按类型分段处理。"""
    for kind, group in groupby((e for e in envelopes if e.type in HANDLED_TYPES), key=lambda e: e.type):
        run = list(group)
        if kind == "incident.reported":
            await handle_incidents(
                session=session,
                envelopes=run,
                jurisdiction=jurisdiction,
                duplicate_distance_m=duplicate_distance_m,
                duplicate_window=duplicate_window,
            )
        elif kind == "approval.reported":
            await handle_approvals(
                session=session,
                envelopes=run,
                jurisdiction=jurisdiction,
                duplicate_distance_m=duplicate_distance_m,
                duplicate_window=duplicate_window,
            )
        elif kind == "alarm.reported":
            await handle_alarms(
                session=session,
                envelopes=run,
                jurisdiction=jurisdiction,
                duplicate_distance_m=duplicate_distance_m,
                duplicate_window=duplicate_window,
            )
        else:
            await handle_clearings(session=session, envelopes=run)
