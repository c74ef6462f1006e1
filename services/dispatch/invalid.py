"""Invalid reports 不予立案 / 作废: the rule cells of :attr:`Action.MARK_INVALID`. Pure: no I/O.

A case in triage (待人工分拨), or dispatched and not yet accepted (已派遣未签收), may be marked
invalid by a dispatcher with a reason — ``duplicate_elsewhere`` 重复, ``out_of_scope`` 非管辖,
``not_a_problem`` 不属实, ``insufficient`` 信息不全, ``false_alarm`` 误报 (alarm cases only). The case
closes; it then leaves every unit indicator and counts only in its reporter's 有效上报率 and its
device's 误报率 (metrics). Which states and roles: the transition table
(:mod:`services.dispatch.lifecycle`). 分拨中或已派遣未签收的案件可由派遣员以原因作废。
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.dispatch.action_bodies import ActionBody, Note
from services.dispatch.case_model import Actor, CaseSnapshot, CaseState
from shared.vocabulary import INVALID_REASON_LABELS, InvalidReason

__all__ = ["INVALID_FROM", "MarkInvalidBody", "effect_mark_invalid", "validate_mark_invalid"]

#: States a case may be marked invalid in: triage, or dispatched and not yet accepted. 可作废的状态。
INVALID_FROM: frozenset[CaseState] = frozenset({CaseState.TRIAGE, CaseState.DISPATCHED})


class MarkInvalidBody(ActionBody):
    """不予立案 / 作废: the reason (one of the closed list) and a note."""

    reason: InvalidReason
    note: Note = ""


def validate_mark_invalid(case: CaseSnapshot, body: MarkInvalidBody, at: datetime) -> str | None:
    """误报 is a reason for alarm cases only. 误报仅适用于监测告警案件。"""
    if body.reason == "false_alarm" and case.source != "alarm":
        return "误报只适用于监测告警 / false_alarm applies to alarm cases only"
    return None


def effect_mark_invalid(case: CaseSnapshot, body: MarkInvalidBody, actor: Actor, at: datetime) -> dict[str, Any]:
    """The reason kept, the 退单 window gone; 误报 also flags the alarm false. 记录作废原因。"""
    update: dict[str, Any] = {
        "invalid_reason": body.reason,
        "close_reason": f"不予立案：{INVALID_REASON_LABELS[body.reason]}",
        "reject_window_ends_at": None,
    }
    if body.reason == "false_alarm":
        update["false_alarm"] = True
    return update
