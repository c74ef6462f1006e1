"""What the approval and alarm sources and invalid reports add to a case's fact (来源事实). Pure: no I/O.

Folded by :func:`services.metrics.facts.reduce_events` beside the incident events:

``case.invalidated`` (不予立案/作废): ``invalid_reason``; the case is closed and leaves every unit
    indicator — it counts only in its reporter's 有效上报率 and (误报) its device's 误报率.
``case.auto_recovered`` (自动恢复): the alarm cleared before acceptance; closed, counted apart from
    the unit's 办结.
``case.false_alarm`` (误报): flags the alarm false.
``case.inspected`` (检查结果): ``inspection_result``; the task is checked (its 办结) and closed.
``case.revoked`` (撤销): the approval was revoked; the task is closed and leaves the supervision figures.
``case.occurrence_added`` (告警合并): ``occurrences`` (read from any event).

Any event may carry ``kind`` (``incident`` / ``inspection``), ``reporter_id`` and ``device_id``.
:func:`in_unit_indicators` says which facts a unit's incident indicators count: incidents neither
invalid nor auto-recovered. 作废、自动恢复的案件与监管任务不计入单位的事件处置指标。
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from services.metrics.facts import CaseFact

__all__ = ["SOURCE_FIELDS", "fold_source_event", "in_unit_indicators"]

#: CaseFact fields this module owns, with their defaults. 本模块维护的事实字段及默认值。
SOURCE_FIELDS: Final[dict[str, Any]] = {
    "kind": "incident",
    "reporter_id": None,
    "device_id": None,
    "invalid": False,
    "invalid_reason": None,
    "auto_recovered": False,
    "false_alarm": False,
    "inspection_result": None,
    "revoked": False,
    "occurrences": 1,
}


def fold_source_event(f: dict[str, Any], t: str, at: datetime, data: Mapping[str, Any]) -> None:
    """Fold one event's source facts into the working fact. 折叠来源相关事实。"""
    for key in ("kind", "reporter_id", "device_id"):
        if data.get(key) is not None:
            f[key] = data[key]
    if isinstance(data.get("occurrences"), int):
        f["occurrences"] = max(f["occurrences"], data["occurrences"])
    if t == "case.invalidated":
        f["invalid"] = True
        f["invalid_reason"] = data.get("invalid_reason") or data.get("reason")
        f["false_alarm"] = f["false_alarm"] or f["invalid_reason"] == "false_alarm"
        f["closed_at"] = at
    elif t == "case.auto_recovered":
        f["auto_recovered"] = True
        f["closed_at"] = at
    elif t == "case.false_alarm":
        f["false_alarm"] = True
    elif t == "case.inspected":
        f["inspection_result"] = data.get("inspection_result")
        f["resolved_at"] = at
        f["closed_at"] = at
    elif t == "case.revoked":
        f["revoked"] = True
        f["closed_at"] = at


def in_unit_indicators(fact: CaseFact) -> bool:
    """Whether a unit's incident indicators count this case. 是否计入单位的事件处置指标。"""
    return fact.kind == "incident" and not fact.invalid and not fact.auto_recovered
