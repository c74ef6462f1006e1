"""Checks of the matter catalogue 事项清单校验: codes, holding departments, deadlines, groups."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence, Set

from shared.jurisdiction.limits import MAX_DEADLINE_HOURS, MAX_GROUP_LENGTH, MAX_MATTER_GROUPS, URGENCIES
from shared.jurisdiction.model import DeadlineAmount, Matter, WorkingDays
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


def _as_hours(amount: DeadlineAmount) -> float:
    """For comparing urgencies only: a working day counts as 24 h (an upper bound). 仅用于比较。"""
    return amount.working_days * 24.0 if isinstance(amount, WorkingDays) else amount


def _text(amount: DeadlineAmount) -> str:
    return f"{amount.working_days} working days" if isinstance(amount, WorkingDays) else str(amount)


def _deadline_problems(matter: Matter, base: str) -> list[Problem]:
    """Each deadline in range, working days only on working time and never for 特急件 (natural time),
    and none growing with urgency. 时限范围；工作日时限仅用于工作时制且不用于特急件；不随紧急程度增长。"""
    problems: list[Problem] = []
    in_range = True
    for name in URGENCIES:
        amount = matter.deadlines.for_urgency(name)
        if isinstance(amount, WorkingDays):
            if name == "critical" or matter.time_basis != "working":
                in_range = False
                why = "特急件 runs on natural time" if name == "critical" else "the matter runs on natural time"
                problems.append(
                    Problem(f"{base}.deadlines.{name}", f"working days need working time: {why}; give hours")
                )
        elif not hours_ok(amount):
            in_range = False
            problems.append(
                Problem(f"{base}.deadlines.{name}", f"{amount} h is out of range (0 < h ≤ {MAX_DEADLINE_HOURS})")
            )
    d = matter.deadlines
    if in_range and not (_as_hours(d.normal) >= _as_hours(d.urgent) >= _as_hours(d.critical)):
        problems.append(
            Problem(
                f"{base}.deadlines",
                f"deadlines must not grow with urgency (normal {_text(d.normal)} ≥ urgent {_text(d.urgent)} ≥ "
                f"critical {_text(d.critical)})",
            )
        )
    return problems
