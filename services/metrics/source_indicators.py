"""Figures of the approval and alarm sources and of invalid reports (来源指标). Pure: no I/O.

Kept apart from a unit's incident indicators (:mod:`services.metrics.indicators`), which count
neither invalid reports, nor auto-recovered alarms, nor supervision tasks
(:func:`services.metrics.source_facts.in_unit_indicators`):

* :func:`reporter_rates` — per grid worker (网格员): 有效上报率 = reports not marked invalid ÷ reports;
  自处置率 = reports handled on the spot ÷ reports.
* :func:`device_rates` — per device (设备): 误报率 = alarm cases marked false ÷ alarm cases; and the
  alarms counted into them (告警次数).
* :func:`supervision_rates` — per unit, its supervision tasks (监管任务): 按期检查率 = tasks checked
  by their deadline ÷ tasks due by ``as_of`` (or checked); 整改率 = 责令整改 ÷ tasks checked;
  立案查处 count. Revoked tasks (撤销) leave the figures.
* :func:`auto_recovered_counts` — per unit, alarm cases closed by 自动恢复 (not the unit's 办结).

A rate with an empty denominator is ``None``. 分母为零的比率为 None。
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from services.metrics.facts import CaseFact

__all__ = ["auto_recovered_counts", "device_rates", "reporter_rates", "supervision_rates"]


def _rate(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 4)


def reporter_rates(facts: Iterable[CaseFact]) -> list[dict[str, Any]]:
    """有效上报率 and 自处置率 per grid worker, sorted by worker id. 网格员有效上报率与自处置率。"""
    rows: dict[str, dict[str, Any]] = {}
    for fact in facts:
        if fact.source != "gridworker" or fact.reporter_id is None or fact.merged_into is not None:
            continue
        row = rows.setdefault(
            fact.reporter_id, {"reporter_id": fact.reporter_id, "reports": 0, "invalid": 0, "self_handled": 0}
        )
        row["reports"] += 1
        row["invalid"] += int(fact.invalid)
        row["self_handled"] += int(fact.self_handled)
    for row in rows.values():
        row["valid_rate"] = _rate(row["reports"] - row["invalid"], row["reports"])
        row["self_handled_rate"] = _rate(row["self_handled"], row["reports"])
    return [rows[k] for k in sorted(rows)]


def device_rates(facts: Iterable[CaseFact]) -> list[dict[str, Any]]:
    """误报率 per device, with the alarms its cases counted. 设备误报率。"""
    rows: dict[str, dict[str, Any]] = {}
    for fact in facts:
        if fact.source != "alarm" or fact.device_id is None:
            continue
        row = rows.setdefault(
            fact.device_id,
            {"device_id": fact.device_id, "cases": 0, "false_alarms": 0, "alarms": 0, "auto_recovered": 0},
        )
        row["cases"] += 1
        row["false_alarms"] += int(fact.false_alarm)
        row["alarms"] += fact.occurrences
        row["auto_recovered"] += int(fact.auto_recovered)
    for row in rows.values():
        row["false_alarm_rate"] = _rate(row["false_alarms"], row["cases"])
    return [rows[k] for k in sorted(rows)]


def supervision_rates(facts: Iterable[CaseFact], as_of: datetime) -> list[dict[str, Any]]:
    """按期检查率, 整改率 and 立案查处 per (unit, township) of its supervision tasks. 监管任务指标。"""
    rows: dict[tuple[str, str | None], dict[str, Any]] = {}
    for fact in facts:
        if fact.kind != "inspection" or fact.unit is None or fact.revoked or fact.invalid:
            continue
        row = rows.setdefault(
            (fact.unit, fact.township),
            {
                "unit": fact.unit,
                "township": fact.township,
                "tasks": 0,
                "due": 0,
                "checked": 0,
                "checked_on_time": 0,
                "rectify": 0,
                "case_opened": 0,
            },
        )
        checked = fact.inspection_result is not None and fact.resolved_at is not None and fact.resolved_at <= as_of
        row["tasks"] += 1
        row["due"] += int(checked or (fact.deadline is not None and fact.deadline <= as_of))
        row["checked"] += int(checked)
        on_time = checked and (
            fact.deadline is None or (fact.resolved_at is not None and fact.resolved_at <= fact.deadline)
        )
        row["checked_on_time"] += int(on_time)
        row["rectify"] += int(checked and fact.inspection_result == "rectify")
        row["case_opened"] += int(checked and fact.inspection_result == "case_opened")
    for row in rows.values():
        row["checked_on_time_rate"] = _rate(row["checked_on_time"], row["due"])
        row["rectify_rate"] = _rate(row["rectify"], row["checked"])
    return [rows[k] for k in sorted(rows, key=lambda k: (k[0], k[1] or ""))]


def auto_recovered_counts(facts: Iterable[CaseFact]) -> list[dict[str, Any]]:
    """Alarm cases closed by 自动恢复, per (unit, township). 自动恢复案件数（与办结分开）。"""
    counts: dict[tuple[str | None, str | None], int] = defaultdict(int)
    for fact in facts:
        if fact.auto_recovered:
            counts[(fact.unit, fact.township)] += 1
    return [
        {"unit": unit, "township": township, "auto_recovered": n}
        for (unit, township), n in sorted(counts.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or ""))
    ]
