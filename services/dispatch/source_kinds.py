"""What the approval and alarm sources change in a routed report (各来源的立案差异). Pure: no I/O.

Routing is the same for every source (place, matter, devolution); :func:`adapt` then applies
what a source's kind adds:

* 审批办件 → a supervision task (kind ``inspection``): its deadline is the first check's,
  ``supervise_within_days`` working days after approval (:func:`services.dispatch.supervision.supervise_days`);
  no duplicate check (two approvals are two tasks).
* 监测告警 → the device and alarm type on the case, the latest occurrence's time; below the type's
  confidence threshold a dispatch becomes triage (复核); no report-level duplicate check (bursts
  are joined by device and type instead, :mod:`services.dispatch.alarm_cases`).
* 网格员上报 → the worker is the case's reporter (有效上报率).

审批生成监管任务（期限为监管时限）；告警记录设备与类型，低置信度转人工复核；网格员为上报人。
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from services.dispatch.alarms import REVIEW_REASON, needs_review
from services.dispatch.deadlines import accept_deadline
from services.dispatch.supervision import INSPECTION, supervise_days
from shared.events import AlarmReported, ApprovalReported

if TYPE_CHECKING:
    from services.dispatch.grid_client import LoadedJurisdiction
    from services.dispatch.new_cases import Routed

__all__ = ["adapt"]


def adapt(routed: Routed, jurisdiction: LoadedJurisdiction) -> None:
    """Apply the report's source kind to ``routed`` (in place, before staging). 按来源类型调整。"""
    event = routed.event
    record = routed.record
    if event.worker_id:
        record.reporter_id = event.worker_id
    if isinstance(event, ApprovalReported):
        _supervision_task(routed, jurisdiction)
    elif isinstance(event, AlarmReported):
        alarm = event.alarm
        record.device_id = record.reporter_id = alarm.device_id
        record.alarm_type = alarm.alarm_type
        record.snapshot = record.snapshot.model_copy(update={"last_raised_at": alarm.raised_at})
        routed.report = None
        threshold = jurisdiction.snapshot.alarm_type(alarm.alarm_type).confidence_threshold
        if routed.decision.outcome == "dispatch" and needs_review(alarm.confidence, threshold):
            routed.decision = dataclasses.replace(
                routed.decision,
                outcome="triage",
                triage_reason=REVIEW_REASON,
                explanation_zh=f"{routed.decision.explanation_zh}；置信度 {alarm.confidence:.2f} 低于 "
                f"{threshold:.2f}，转人工复核",
            )
            record.triage_reason = REVIEW_REASON


def _supervision_task(routed: Routed, jurisdiction: LoadedJurisdiction) -> None:
    """A supervision task: kind ``inspection``, due ``supervise_within_days`` working days after approval."""
    event = routed.event
    assert isinstance(event, ApprovalReported)
    record = routed.record
    record.snapshot = record.snapshot.model_copy(update={"kind": INSPECTION})
    routed.report = None
    decision = routed.decision
    if decision.outcome != "dispatch":
        return
    matter = jurisdiction.snapshot.matter(decision.matter) if decision.matter else None
    days = supervise_days(event.approval.supervise_within_days, matter)
    calendar = jurisdiction.calendar
    # Counted from the approval; a double push arriving so late that the check would already be due
    # counts from its arrival instead (a task is never dispatched past its deadline).
    # 自审批办结时起算；推送过迟以致已到期的，自到达时起算。
    due = calendar.deadline_in_working_days(event.approval.approved_at, days)
    if due.due_at <= routed.at:
        due = calendar.deadline_in_working_days(routed.at, days)
    routed.decision = dataclasses.replace(
        decision,
        deadline=due.due_at,
        deadline_hours=None,
        deadline_working_days=days,
        time_basis="working",
        provisional=due.provisional or decision.provisional,
        accept_deadline=accept_deadline(calendar, routed.at, due.due_at),
        explanation_zh=f"{decision.explanation_zh}；事中事后监管：{days} 个工作日内完成首次检查",
    )
