"""Checks of the link tables 关联表校验: township functions, devolution lists and source mappings.

Each table links townships or source codes to units and matters. 各表把镇街、来源编码关联到单位与事项。
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from shared.jurisdiction.limits import CITYOPS_KEY
from shared.jurisdiction.model import JurisdictionBundle, Matter, Unit
from shared.jurisdiction.problems import Problem, join_path
from shared.vocabulary import TOWNSHIP_UNIT_KINDS

__all__ = ["check_devolution", "check_source_mappings", "check_township_functions"]


def check_township_functions(
    bundle: JurisdictionBundle, townships: Set[str], unit_index: Mapping[str, int]
) -> list[Problem]:
    """Each township function (镇街职能) names a unit of that township or an agency covering it.

    镇街职能须由本镇单位或覆盖本镇的派驻机构承担，不能是县级部门。
    """
    problems: list[Problem] = []
    for township, functions in bundle.township_functions.items():
        base = join_path("township_functions", township)
        if township not in townships:
            problems.append(Problem(base, f"unknown township {township}"))
        for function, unit_id in functions.items():
            if unit_id not in unit_index:
                problems.append(Problem(f"{base}.{function}", f"unknown unit {unit_id}"))
                continue
            problem = _function_unit_problem(bundle.units[unit_index[unit_id]], township, f"{base}.{function}")
            if problem is not None:
                problems.append(problem)
    return problems


def _function_unit_problem(unit: Unit, township: str, path: str) -> Problem | None:
    if unit.kind in TOWNSHIP_UNIT_KINDS and unit.township_code != township:
        return Problem(path, f"unit {unit.id} belongs to township {unit.township_code}, not {township}")
    if unit.kind == "stationed_agency" and township not in (unit.covers or []):
        return Problem(path, f"stationed agency {unit.id} does not cover {township}")
    if unit.kind == "county_department":
        return Problem(path, f"{unit.id} is a county department; a township function needs a township unit")
    return None


def check_devolution(bundle: JurisdictionBundle, townships: Set[str], matters: Mapping[str, Matter]) -> list[Problem]:
    """Each devolved matter (下放事项) is known, listed once, and has a township unit for its function.

    下放事项须已知、不重复，且本镇有承担其职能的单位。
    """
    problems: list[Problem] = []
    for township, codes in bundle.devolution.items():
        base = join_path("devolution", township)
        if township not in townships:
            problems.append(Problem(base, f"unknown township {township}"))
        seen: set[str] = set()
        functions = bundle.township_functions.get(township, {})
        for k, code in enumerate(codes):
            if code not in matters:
                problems.append(Problem(f"{base}[{k}]", f"unknown matter {code}"))
            elif code in seen:
                problems.append(Problem(f"{base}[{k}]", f"matter {code} listed twice"))
            elif township in townships and matters[code].township_function not in functions:
                fn = matters[code].township_function
                problems.append(
                    Problem(
                        f"{base}[{k}]",
                        f"matter {code} is devolved but township_functions.{township} has no unit for function {fn!r}",
                    )
                )
            seen.add(code)
    return problems


def check_source_mappings(bundle: JurisdictionBundle, matters: Set[str]) -> list[Problem]:
    """Each source code (来源编码) is trimmed, well-formed for 数字城管, and maps to a known matter.

    来源编码不得为空或含首尾空格；数字城管编码须为 大类-小类；映射的事项须已知。
    """
    problems: list[Problem] = []
    for source, mapping in bundle.source_mappings.items():
        for src_code, code in mapping.items():
            p = join_path("source_mappings", source, src_code)
            if not src_code.strip() or src_code != src_code.strip():
                problems.append(Problem(p, f"source code {src_code!r} is empty or has surrounding spaces"))
            if source == "cityops" and not CITYOPS_KEY.fullmatch(src_code):
                problems.append(
                    Problem(p, f"cityops key {src_code!r} must be <major>-<minor>: 2 digits, '-', 2 or 3 digits")
                )
            if code not in matters:
                problems.append(Problem(p, f"unknown matter {code}"))
    return problems
