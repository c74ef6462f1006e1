"""监测告警 rules (pure: no I/O): bursts, 复核, 自动恢复, 误报 — and the transition cells they need.

* Bursts 告警合并: an alarm of the same device and ``alarm_type`` raised within the type's window
  (default 30 min) of an open case's latest occurrence joins that case as an occurrence — counted,
  never dispatched again (:func:`joins`).
* 复核: an alarm whose confidence is below its type's threshold (default 0.6) goes to triage for
  a human look instead of straight to a unit (:func:`needs_review`).
* 自动恢复: the alarm cleared before the case was accepted — the case closes with reason
  自动恢复, counted apart from the unit's 办结 (:func:`recovers`, :attr:`Action.AUTO_RECOVER`).
* 误报: a dispatcher flags an alarm case false; per-device 误报率 is a metrics figure.

同设备同类型、窗口内的告警并入未结案件计次；置信度低于阈值转人工复核；签收前恢复则自动结案；
派遣员可标记误报。
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from services.dispatch.action_bodies import ActionBody, Note
from services.dispatch.case_model import Actor, CaseSnapshot, CaseState
from services.dispatch.identity import case_id_for
from shared.events import AlarmReported, EventEnvelope

__all__ = [
    "ALARM_SOURCE",
    "AUTO_RECOVERED",
    "AUTO_RECOVER_FROM",
    "REVIEW_REASON",
    "AddOccurrenceBody",
    "AutoRecoverBody",
    "BurstPlan",
    "MarkFalseAlarmBody",
    "effect_add_occurrence",
    "effect_auto_recover",
    "effect_mark_false_alarm",
    "joins",
    "needs_review",
    "plan_bursts",
    "pre_alarm_case",
    "pre_mark_false_alarm",
    "recovers",
]

ALARM_SOURCE = "alarm"
#: Close reason of an alarm case that cleared before it was accepted. 自动恢复。
AUTO_RECOVERED = "自动恢复"
#: Triage reason of a low-confidence alarm. 低置信度告警转人工复核。
REVIEW_REASON: Literal["low_confidence"] = "low_confidence"
#: Not yet accepted (未签收): the states a clearing closes a case from. 未签收状态。
AUTO_RECOVER_FROM: frozenset[CaseState] = frozenset(
    {CaseState.REPORTED, CaseState.TRIAGE, CaseState.DISPATCHED, CaseState.REJECTED}
)


class AddOccurrenceBody(ActionBody):
    """告警合并: ``count`` more alarms of the burst joined, the latest raised at ``last_raised_at``."""

    count: int = Field(ge=1)
    last_raised_at: AwareDatetime


class AutoRecoverBody(ActionBody):
    """自动恢复: when the alarm cleared."""

    cleared_at: AwareDatetime
    reason: str = AUTO_RECOVERED


class MarkFalseAlarmBody(ActionBody):
    """误报: the dispatcher's note."""

    note: Note = ""


def joins(last_raised_at: datetime, raised_at: datetime, window: timedelta) -> bool:
    """Whether an alarm raised at ``raised_at`` joins a case whose latest occurrence is ``last_raised_at``.

    Within ``window`` either side (alarms may arrive out of order). 与最近一次告警相隔不超过窗口。
    """
    return abs(raised_at - last_raised_at) <= window


def needs_review(confidence: float | None, threshold: float) -> bool:
    """A video-AI alarm below its type's confidence threshold goes to 复核. 低于阈值转人工复核。"""
    return confidence is not None and confidence < threshold


def recovers(case: CaseSnapshot, raised_at: datetime) -> bool:
    """Whether a clearing of the alarm raised at ``raised_at`` closes ``case`` (自动恢复).

    The case is not accepted yet, and the cleared alarm is its latest occurrence (an earlier
    one clearing while the burst goes on closes nothing). 尚未签收，且恢复的是最近一次告警。
    """
    if case.source != ALARM_SOURCE or case.state not in AUTO_RECOVER_FROM:
        return False
    return case.last_raised_at is None or raised_at >= case.last_raised_at


@dataclass
class BurstPlan:
    """Which alarms open a case, and which join which case. 立案的告警与并入各案件的告警。"""

    new: list[EventEnvelope[Any]]
    joined: dict[uuid.UUID, list[AlarmReported]]


def plan_bursts(
    alarms: Sequence[EventEnvelope[Any]],
    open_cases: dict[tuple[str, str], list[tuple[uuid.UUID, datetime]]],
    window_of: dict[str, timedelta],
) -> BurstPlan:
    """Per alarm, in order: join an open case of its device and type within the window, or open one (pure).

    ``open_cases``: (device, type) → [(case id, latest occurrence)]; updated as the batch goes.
    An alarm that arrives already cleared opens a case that closes at once, so none joins it.
    逐条判定：并入窗口内同设备同类型的未结案件，或新立案（已恢复的告警立案后即结案，不再并入）。
    """
    plan = BurstPlan(new=[], joined=defaultdict(list))
    for envelope in alarms:
        alarm: AlarmReported = envelope.data
        facts = alarm.alarm
        key = (facts.device_id, facts.alarm_type)
        window = window_of[facts.alarm_type]
        found = None
        for i, (case_id, last) in enumerate(open_cases.get(key, ())):
            if joins(last, facts.raised_at, window):
                found = case_id
                open_cases[key][i] = (case_id, max(last, facts.raised_at))
                break
        if found is not None:
            plan.joined[found].append(alarm)
            continue
        plan.new.append(envelope)
        if facts.cleared_at is None:
            open_cases.setdefault(key, []).append((case_id_for(alarm.event_id), facts.raised_at))
    return plan


# --------------------------------------------------------------------------- transition cells


def pre_alarm_case(case: CaseSnapshot, at: datetime) -> str | None:
    """Only alarm cases. 仅限监测告警案件。"""
    if case.source != ALARM_SOURCE:
        return "不是监测告警案件 / not an alarm case"
    return None


def pre_mark_false_alarm(case: CaseSnapshot, at: datetime) -> str | None:
    """An alarm case not flagged yet. 未标记误报的告警案件。"""
    if case.false_alarm:
        return "已标记误报 / already marked a false alarm"
    return pre_alarm_case(case, at)


def effect_add_occurrence(case: CaseSnapshot, body: AddOccurrenceBody, actor: Actor, at: datetime) -> dict[str, Any]:
    latest = body.last_raised_at if case.last_raised_at is None else max(case.last_raised_at, body.last_raised_at)
    return {"occurrences": case.occurrences + body.count, "last_raised_at": latest}


def effect_auto_recover(case: CaseSnapshot, body: AutoRecoverBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"close_reason": AUTO_RECOVERED, "reject_window_ends_at": None}


def effect_mark_false_alarm(case: CaseSnapshot, body: MarkFalseAlarmBody, actor: Actor, at: datetime) -> dict[str, Any]:
    return {"false_alarm": True}
