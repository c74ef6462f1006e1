"""整改复查: the follow-up check task a 责令整改 result creates and links (use case; no commit).

The follow-up is a supervision task of its own (kind ``inspection``) for the same unit, matter
and place, linked both ways (``follow_up_of`` on it, ``follow_up_case`` on the task it follows),
with its own deadline: the result's ``follow_up_within_days`` working days after the inspection,
else the matter's 监管时限 (:func:`services.dispatch.supervision.supervise_days`). Its id is
deterministic (:func:`services.dispatch.supervision.follow_up_id`), so a retried request creates
it once. 责令整改后生成复查任务（同单位、同事项、同地点），双向关联，期限另计。
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.action_bodies import DispatchBody
from services.dispatch.case_model import CASE_REPORTED, Action, Actor, Applied, CaseSnapshot, Role
from services.dispatch.deadlines import accept_deadline, reject_window_ends
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.identity import SYSTEM_ACTOR
from services.dispatch.lifecycle import apply
from services.dispatch.records import CaseRecord
from services.dispatch.staging import Pending, must, stage, stage_applied
from services.dispatch.store import CASE_COLUMNS, TRANSITION_COLUMNS, NewCaseRows, insert_cases
from services.dispatch.supervision import INSPECTION, RecordInspectionBody, follow_up_id, supervise_days

__all__ = ["create_follow_up"]


def _follow_up_record(parent: CaseRecord, at: Any) -> CaseRecord:
    fid = follow_up_id(parent.id)
    record = copy.copy(parent)
    record.id = fid
    record.incident_id = fid
    record.source_id = f"{parent.source_id}#整改复查"
    record.follow_up_of = parent.id
    record.merged_into = None
    record.dispatched_at = at
    record.triage_reason = None
    record.decided_by = "follow_up"
    record.explanation = {"outcome": "dispatch", "follow_up_of": str(parent.id), "explanation_zh": "责令整改后复查"}
    record.snapshot = CaseSnapshot(
        id=str(fid),
        township=parent.snapshot.township,
        source=parent.snapshot.source,
        reported_at=at,
        matter=parent.snapshot.matter,
        kind=INSPECTION,
    )
    return record


async def create_follow_up(
    *,
    session: AsyncSession,
    parent: CaseRecord,
    inspected: Applied,
    jurisdiction: LoadedJurisdiction,
    correlation_id: str,
) -> CaseRecord:
    """Create and dispatch the 整改复查 task of ``parent`` (inspected ``rectify``). 生成并派遣复查任务。"""
    at = inspected.at
    body = inspected.body
    assert isinstance(body, RecordInspectionBody)
    matter = jurisdiction.snapshot.matter(parent.snapshot.matter) if parent.snapshot.matter else None
    days = supervise_days(body.follow_up_within_days, matter)
    calendar = jurisdiction.calendar
    due = calendar.deadline_in_working_days(at, days)
    record = _follow_up_record(parent, at)
    record.time_basis = "working"
    record.provisional = due.provisional
    record.accept_deadline = accept_deadline(calendar, at, due.due_at)
    pending = Pending()
    stage(
        pending,
        record,
        event_type=CASE_REPORTED,
        action=None,
        actor=Actor(Role.SYSTEM, id="dispatch:follow_up"),
        at=at,
        previous_state=None,
        body={},
        changes=record.snapshot.model_dump(mode="json"),
        note=None,
        extra=None,
        correlation_id=correlation_id,
        publish=False,
    )
    assert parent.snapshot.primary_unit is not None
    dispatch = DispatchBody(
        expected_version=record.snapshot.version,
        unit=parent.snapshot.primary_unit,
        deadline=due.due_at,
        reject_window_ends_at=reject_window_ends(calendar, at),
    )
    applied = must(apply(record.snapshot, Action.DISPATCH, dispatch, SYSTEM_ACTOR, at))
    reason = f"责令整改复查：{days} 个工作日内完成复查（跟进 {parent.id}）"
    stage_applied(pending, record, applied, correlation_id=correlation_id, extra={"reason": reason})
    new = NewCaseRows(
        record.id,
        CASE_COLUMNS.values(record.to_row()),
        [TRANSITION_COLUMNS.values(row) for row in pending.rows],
        pending.events,
        pending.bulk_events,
    )
    await insert_cases(session, [new])
    return record
