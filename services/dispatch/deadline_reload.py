"""Recompute stored deadlines once a year's holiday notice is loaded 载入放假通知后重算期限 (use case).

The rule is :mod:`services.dispatch.deadline_recompute` (pure); here the open cases with a provisional
deadline are read, each change applied through the lifecycle (期限重算 ``case.deadline_recomputed``: one
timeline entry and one event per changed case) and saved. Takes the session by keyword and never
commits; rows are claimed ``FOR UPDATE SKIP LOCKED`` a page at a time (by case id), so two replicas
never recompute the same case twice. 以 SKIP LOCKED 分页认领，不提交。
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.action_bodies import RecomputeDeadlineBody
from services.dispatch.case_model import RUNNING_STATES, Action, CaseState, Refused
from services.dispatch.deadline_recompute import RECOMPUTED_KEY, recompute, routed_deadline
from services.dispatch.identity import SYSTEM_ACTOR
from services.dispatch.lifecycle import apply
from services.dispatch.models import cases
from services.dispatch.records import CaseRecord
from services.dispatch.staging import Pending, stage_applied
from services.dispatch.store import save
from shared.calendar import WorkingCalendar

__all__ = ["RecomputePage", "recompute_deadlines"]

_RUNNING_STATES = sorted(str(s) for s in RUNNING_STATES)


@dataclass
class RecomputePage:
    """One page of candidates: the cases changed, how many were looked at, where the next page starts."""

    changed: list[uuid.UUID] = field(default_factory=list)
    seen: int = 0
    last_id: uuid.UUID | None = None


async def recompute_deadlines(
    *,
    session: AsyncSession,
    calendar: WorkingCalendar,
    now: datetime,
    correlation_id: str,
    after: uuid.UUID | None = None,
    limit: int = 200,
) -> RecomputePage:
    """Recompute the provisional deadlines of open cases on ``calendar``, one page (ids after ``after``).

    重算在办案件的暂定期限（一页）。Call again with ``after=page.last_id`` while ``page.seen == limit``.
    """
    c = cases.c
    stmt = (
        select(cases)
        .where(
            c.provisional.is_(True),
            c.deadline.is_not(None),
            c.state.in_(_RUNNING_STATES),
            c.merged_into.is_(None),
        )
        .order_by(c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if after is not None:
        stmt = stmt.where(c.id > after)
    rows = (await session.execute(stmt)).mappings().all()
    page = RecomputePage(seen=len(rows), last_id=rows[-1]["id"] if rows else None)
    for row in rows:
        record = CaseRecord.from_row(row)
        case = record.snapshot
        change = recompute(
            calendar=calendar,
            routed=routed_deadline(record.explanation),
            deadline=case.deadline,
            accept_by=record.accept_deadline,
            accepted=case.state is not CaseState.DISPATCHED,
            provisional=record.provisional,
            overdue=case.overdue,
            now=now,
        )
        if change is None:
            continue
        body = RecomputeDeadlineBody(
            expected_version=case.version, deadline=change.deadline, overdue=change.overdue, reason=change.reason
        )
        result = apply(case, Action.RECOMPUTE_DEADLINE, body, SYSTEM_ACTOR, max(now, case.previous_at))
        if isinstance(result, Refused):
            continue
        record.provisional = change.provisional
        record.accept_deadline = change.accept_deadline
        record.explanation = {
            **record.explanation,
            RECOMPUTED_KEY: {"deadline": change.deadline.isoformat(), "at": result.at.isoformat()},
        }
        pending = Pending()
        stage_applied(
            pending,
            record,
            result,
            correlation_id=correlation_id,
            extra={"details": {"previous_deadline": change.old_deadline.isoformat(), "reason": change.reason}},
        )
        await save(session, record, pending)
        page.changed.append(record.id)
    return page
