"""The overdue sweep 超期扫描: flag open cases past their deadline, once, across replicas.

Rows are claimed ``FOR UPDATE SKIP LOCKED``; a matter configured to escalate when
overdue is escalated (吹哨) in the same transaction. A pass's cases are written together, as a batch
of actions is: their changed columns in one statement per set of columns, their timeline rows and
events in one each. Nothing here commits.
以 SKIP LOCKED 认领；配置了超期自动吹哨的事项同事务内吹哨；一轮的案件一并写入（只写变化的列）。不提交。
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.action_bodies import EscalateBody, MarkOverdueBody
from services.dispatch.case_model import Action, Applied, Refused
from services.dispatch.deadlines import report_in_deadline
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.identity import SYSTEM_ACTOR, SYSTEM_ADMIN
from services.dispatch.lifecycle import apply
from services.dispatch.models import OVERDUE_SWEEP_CONDITION, cases
from services.dispatch.records import CaseRecord
from services.dispatch.staging import Pending, stage_applied
from services.dispatch.store import locked_case, update_cases, write_pending

__all__ = ["due_cases", "ordered_scan", "sweep_overdue"]

#: Around the sweep's query only: PostgreSQL reads the sweep's index in deadline order and stops at
#: the limit. Without statistics (a server that does not autovacuum, a table just imported) it
#: estimates a handful of due cases and would rather collect every one into a bitmap and sort it:
#: after a history import, every case of the year (5.4 s a pass at 2 M cases). 仅在扫描查询期间关闭位图扫描：
#: 按期限顺序读索引、取满即止；无统计信息时规划器会把全部到期案件收进位图再排序。
_ORDERED_SCAN = text("SET LOCAL enable_bitmapscan = off")
_PLANNER_DEFAULT = text("SET LOCAL enable_bitmapscan TO DEFAULT")


def due_cases(*, now: datetime, limit: int) -> Select[Any]:
    """Open cases past their deadline and not yet flagged, earliest deadline first, claimed
    ``FOR UPDATE SKIP LOCKED``. 已过期限、尚未标记超期的在办案件（按期限，跳过已锁行）。

    The condition is :data:`~services.dispatch.models.OVERDUE_SWEEP_CONDITION` verbatim, the
    predicate of the partial index ``ix_cases_overdue_sweep``: PostgreSQL uses a partial index only
    when the query's conditions prove its predicate (written as ``overdue IS false`` with bound
    states, they did not, and every pass read every case: 610 ms at 300 k cases).
    条件逐字取自部分索引谓词，规划器才能使用该索引。
    """
    c = cases.c
    return (
        select(cases)
        .where(text(OVERDUE_SWEEP_CONDITION), c.deadline < now)
        .order_by(c.deadline)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


@asynccontextmanager
async def ordered_scan(session: AsyncSession) -> AsyncIterator[None]:
    """Within the block, PostgreSQL reads the sweep's index in deadline order and stops at the limit
    (bitmap scans off for the transaction, back to the default after). 块内按期限顺序读索引。"""
    await session.execute(_ORDERED_SCAN)
    try:
        yield
    finally:
        await session.execute(_PLANNER_DEFAULT)


async def sweep_overdue(
    *,
    session: AsyncSession,
    now: datetime,
    jurisdiction: LoadedJurisdiction | None,
    correlation_id: str,
    limit: int = 200,
) -> list[uuid.UUID]:
    """Flag open cases past their deadline (each once, whatever the number of replicas). 标记超期案件。

    Rows are claimed ``FOR UPDATE SKIP LOCKED`` and re-checked by the lifecycle
    (already flagged → refused). A matter with ``auto_escalate_when_overdue``
    is escalated (吹哨) to its county department unless an escalation is pending.
    行以 SKIP LOCKED 认领；已标记的由状态机拒绝；配置了超期自动吹哨的事项自动吹哨。
    """
    async with ordered_scan(session):
        rows = (await session.execute(due_cases(now=now, limit=limit))).mappings().all()
    records: list[CaseRecord] = []
    pending = Pending()
    for row in rows:
        record = locked_case(row)  # claimed FOR UPDATE above: only its changed columns are written
        case = record.snapshot
        at = max(now, case.previous_at)
        result = apply(case, Action.MARK_OVERDUE, MarkOverdueBody(expected_version=case.version), SYSTEM_ACTOR, at)
        if isinstance(result, Refused):
            continue
        stage_applied(pending, record, result, correlation_id=correlation_id)
        matter = jurisdiction.snapshot.matter(case.matter) if jurisdiction and case.matter else None
        if (
            jurisdiction is not None
            and matter is not None
            and matter.auto_escalate_when_overdue
            and jurisdiction.snapshot.unit(matter.department) is not None
        ):
            body = EscalateBody(
                expected_version=record.snapshot.version,
                department=matter.department,
                reason=f"事项「{matter.name}」超期自动吹哨 / auto-escalated when overdue",
            )
            escalated = apply(record.snapshot, Action.ESCALATE, body, SYSTEM_ADMIN, at)
            if isinstance(escalated, Applied):
                record.accept_deadline = report_in_deadline(jurisdiction.calendar, at)
                stage_applied(pending, record, escalated, correlation_id=correlation_id)
        records.append(record)
    await update_cases(session, records)
    await write_pending(session, pending)
    return [record.id for record in records]
