"""The approval and alarm sources' sections 审批办件与监测告警的配置校验.

* ``source_mappings.approval`` maps 审批事项 codes to matters that can be supervised: each such
  matter needs its ``supervise_within_days`` (监管时限) unless every approval carries its own —
  the bundle cannot know, so a missing one is reported (the check deadline would be a guess).
* ``alarm_types`` lists settings only for alarm types that ``source_mappings.alarm`` maps.

审批事项映射到的事项须设监管时限；告警类型设置只能针对已映射的告警类型。
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.jurisdiction.model import JurisdictionBundle, Matter
from shared.jurisdiction.problems import Problem, join_path

__all__ = ["check_alarm_types", "check_approval_mappings"]


def check_approval_mappings(bundle: JurisdictionBundle, matters: Mapping[str, Matter]) -> list[Problem]:
    """Every matter an approval maps to has a 监管时限. 审批映射的事项须有监管时限。"""
    problems: list[Problem] = []
    for item_code, code in bundle.source_mappings.get("approval", {}).items():
        matter = matters.get(code)
        if matter is not None and matter.supervise_within_days is None:
            problems.append(
                Problem(
                    join_path("source_mappings", "approval", item_code),
                    f"matter {code} has no supervise_within_days (监管时限), needed for approvals",
                )
            )
    return problems


def check_alarm_types(bundle: JurisdictionBundle) -> list[Problem]:
    """Alarm-type settings only for mapped alarm types. 告警类型设置须对应已映射的类型。"""
    mapped = bundle.source_mappings.get("alarm", {})
    return [
        Problem(join_path("alarm_types", code), f"alarm type {code!r} is not in source_mappings.alarm")
        for code in bundle.alarm_types
        if code not in mapped
    ]
