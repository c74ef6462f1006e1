"""Checks of the matter catalogue 事项清单校验: codes, holding departments, deadlines, groups."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence, Set

from shared.jurisdiction.limits import MAX_DEADLINE_HOURS, MAX_GROUP_LENGTH, MAX_MATTER_GROUPS, URGENCIES
from shared.jurisdiction.model import Matter
from shared.jurisdiction.problems import Problem, join_path

__all__ = ["check_matters", "hours_ok"]


def hours_ok(hours: float) -> bool:
    """0 < hours ≤ one year, finite. 时限是否在范围内。"""
    return math.isfinite(hours) and 0 < hours <= MAX_DEADLINE_HOURS


def check_matters(
    matters: Sequence[Matter], county_departments: Set[str], unit_index: Mapping[str, int]
) -> list[Problem]:
    """Per matter: code, department, township function, deadlines, group; then the number of groups.

    逐个事项检查编码、主管部门、镇街职能、时限与分组；最后检查分组总数。
    """
    problems: list[Problem] = []
    matter_index: dict[str, int] = {}
    groups: dict[str, int] = {}
    for i, matter in enumerate(matters):
        base = join_path("matters", i)
        if not matter.code.strip():
            problems.append(Problem(f"{base}.code", "matter code is empty"))
        if matter.code in matter_index:
            problems.append(
                Problem(
                    f"{base}.code",
                    f"duplicate matter code {matter.code} (first at matters[{matter_index[matter.code]}])",
                )
            )
        else:
            matter_index[matter.code] = i
        if matter.department not in county_departments:
            what = "unknown unit" if matter.department not in unit_index else "not a county_department unit"
            problems.append(Problem(f"{base}.department", f"{matter.department}: {what}"))
        if not matter.township_function.strip():
            problems.append(Problem(f"{base}.township_function", "township_function is empty"))
        problems.extend(_deadline_problems(matter, base))
        if matter.group is not None:
            if not matter.group.strip() or len(matter.group) > MAX_GROUP_LENGTH:
                problems.append(Problem(f"{base}.group", f"group must be 1–{MAX_GROUP_LENGTH} characters"))
            else:
                groups.setdefault(matter.group, i)
    if len(groups) > MAX_MATTER_GROUPS:
        problems.append(Problem("matters", f"{len(groups)} matter groups; at most {MAX_MATTER_GROUPS} (metrics label)"))
    return problems


def _deadline_problems(matter: Matter, base: str) -> list[Problem]:
    """Each deadline in range, and none growing with urgency. 时限范围，且不随紧急程度增长。"""
    problems: list[Problem] = []
    in_range = True
    for name in URGENCIES:
        hours = matter.deadlines.for_urgency(name)
        if not hours_ok(hours):
            in_range = False
            problems.append(
                Problem(f"{base}.deadlines.{name}", f"{hours} h is out of range (0 < h ≤ {MAX_DEADLINE_HOURS})")
            )
    d = matter.deadlines
    if in_range and not (d.normal >= d.urgent >= d.critical):
        problems.append(
            Problem(
                f"{base}.deadlines",
                f"deadlines must not grow with urgency (normal {d.normal} ≥ urgent {d.urgent} ≥ critical {d.critical})",
            )
        )
    return problems
