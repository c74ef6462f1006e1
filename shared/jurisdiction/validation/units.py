"""Checks of the handling units 承办单位校验: ids, townships, departments, stationed agencies' coverage."""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass, field

from shared.jurisdiction.model import Unit
from shared.jurisdiction.problems import Problem, join_path
from shared.vocabulary import TOWNSHIP_UNIT_KINDS

__all__ = ["check_units"]


@dataclass(slots=True)
class _Seen:
    """What earlier units claimed, by position. 已出现的单位及其占用。"""

    townships: Set[str]
    county_departments: Set[str]
    unit_index: dict[str, int] = field(default_factory=dict)
    enforcement_of: dict[str, int] = field(default_factory=dict)
    agency_of: dict[tuple[str, str], int] = field(default_factory=dict)


def check_units(units: Sequence[Unit], townships: Set[str]) -> list[Problem]:
    """Per unit: id, township, department, then coverage (stationed agencies only).

    逐个单位检查：id、所属镇街、所属部门、派驻覆盖范围（仅派驻机构）。
    """
    seen = _Seen(townships=townships, county_departments={u.id for u in units if u.kind == "county_department"})
    problems: list[Problem] = []
    for i, unit in enumerate(units):
        base = join_path("units", i)
        problems.extend(_identity(i, unit, base, seen))
        problems.extend(_township(i, unit, base, seen))
        problems.extend(_department(unit, base, seen))
        problems.extend(_coverage(i, unit, base, seen))
    return problems


def _identity(i: int, unit: Unit, base: str, seen: _Seen) -> list[Problem]:
    problems: list[Problem] = []
    if not unit.id.strip():
        problems.append(Problem(f"{base}.id", "unit id is empty"))
    if unit.id in seen.unit_index:
        first = seen.unit_index[unit.id]
        problems.append(Problem(f"{base}.id", f"duplicate unit id {unit.id} (first at units[{first}])"))
    else:
        seen.unit_index[unit.id] = i
    return problems


def _township(i: int, unit: Unit, base: str, seen: _Seen) -> list[Problem]:
    problems: list[Problem] = []
    if unit.kind in TOWNSHIP_UNIT_KINDS and unit.township_code is None:
        problems.append(
            Problem(f"{base}.township_code", f"a {unit.kind} belongs to one township: township_code is required")
        )
    if unit.township_code is not None and unit.township_code not in seen.townships:
        problems.append(Problem(f"{base}.township_code", f"unknown township {unit.township_code}"))
    if unit.kind == "enforcement_team" and unit.township_code in seen.townships:
        assert unit.township_code is not None
        if unit.township_code in seen.enforcement_of:
            problems.append(
                Problem(
                    f"{base}.kind",
                    f"township {unit.township_code} already has an enforcement team "
                    f"(units[{seen.enforcement_of[unit.township_code]}])",
                )
            )
        else:
            seen.enforcement_of[unit.township_code] = i
    return problems


def _department(unit: Unit, base: str, seen: _Seen) -> list[Problem]:
    if unit.kind == "county_department":
        if unit.department is not None and unit.department != unit.id:
            return [Problem(f"{base}.department", f"a county department names itself: expected {unit.id!r} or nothing")]
    elif unit.department is not None and unit.department not in seen.county_departments:
        return [Problem(f"{base}.department", f"unknown county department {unit.department}")]
    return []


def _coverage(i: int, unit: Unit, base: str, seen: _Seen) -> list[Problem]:
    if unit.kind != "stationed_agency":
        if unit.covers:
            return [Problem(f"{base}.covers", f"only stationed agencies cover townships, not a {unit.kind}")]
        return []
    problems: list[Problem] = []
    if unit.department is None:
        problems.append(
            Problem(f"{base}.department", "a stationed agency belongs to a county department: department is required")
        )
    if not unit.covers:
        problems.append(Problem(f"{base}.covers", "a stationed agency covers one or more townships"))
    for k, township in enumerate(unit.covers or []):
        if township not in seen.townships:
            problems.append(Problem(f"{base}.covers[{k}]", f"unknown township {township}"))
        elif unit.department is not None:
            key = (unit.department, township)
            if key in seen.agency_of and seen.agency_of[key] != i:
                problems.append(
                    Problem(
                        f"{base}.covers[{k}]",
                        f"township {township} is already covered by units[{seen.agency_of[key]}] "
                        f"of department {unit.department}",
                    )
                )
            else:
                seen.agency_of[key] = i
    return problems
