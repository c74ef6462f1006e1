"""Checks of the division tree 区划树校验: codes, names, the one county, parents and code prefixes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.jurisdiction.limits import CODE_LENGTHS, PARENT_LEVEL
from shared.jurisdiction.model import DivisionFeature, JurisdictionBundle
from shared.jurisdiction.problems import Problem, join_path
from shared.vocabulary import DivisionLevel

__all__ = ["check_division_codes", "check_division_parents", "first_positions"]


def first_positions(codes: Sequence[str]) -> dict[str, int]:
    """Index of the first occurrence of each code. 每个编码首次出现的位置。"""
    out: dict[str, int] = {}
    for i, code in enumerate(codes):
        out.setdefault(code, i)
    return out


def check_division_codes(bundle: JurisdictionBundle) -> list[Problem]:
    """The county code, then per feature: duplicate code, code length, empty name, the one county.

    区县编码；逐个要素检查重复编码、编码位数、空名称与唯一的区县要素。
    """
    problems: list[Problem] = []
    add = problems.append
    if not (bundle.county_code.isdigit() and len(bundle.county_code) == 6):
        add(Problem("county_code", f"{bundle.county_code!r} is not a 6-digit county code (PPCCDD)"))
    first_index: dict[str, int] = {}
    county_seen = False
    for i, feature in enumerate(bundle.divisions.features):
        props = feature.properties
        base = join_path("divisions", "features", i, "properties")
        if props.code in first_index:
            add(
                Problem(
                    f"{base}.code",
                    f"duplicate division code {props.code} (first at divisions.features[{first_index[props.code]}])",
                )
            )
        else:
            first_index[props.code] = i
        lengths = CODE_LENGTHS[props.level]
        if not props.code.isdigit() or len(props.code) not in lengths:
            want = " or ".join(str(n) for n in lengths)
            add(Problem(f"{base}.code", f"a {props.level} code has {want} digits, got {props.code!r}"))
        if not props.name.strip():
            add(Problem(f"{base}.name", "name is empty"))
        if props.level == "county":
            problems.extend(_county_problems(bundle, feature, base, extra=county_seen))
            county_seen = True
    if not county_seen:
        add(Problem(join_path("divisions", "features"), f"no county feature (level county, code {bundle.county_code})"))
    return problems


def _county_problems(bundle: JurisdictionBundle, feature: DivisionFeature, base: str, *, extra: bool) -> list[Problem]:
    """Problems of a county feature (``extra``: a county was seen before). 区县要素的问题。"""
    problems: list[Problem] = []
    props = feature.properties
    if extra:
        problems.append(Problem(f"{base}.level", "a bundle describes one county: extra county feature"))
    if props.code != bundle.county_code:
        problems.append(
            Problem(f"{base}.code", f"county feature code {props.code} differs from county_code {bundle.county_code}")
        )
    if props.parent_code is not None:
        problems.append(Problem(f"{base}.parent_code", "the county has no parent: parent_code must be null"))
    return problems


def check_division_parents(features: Sequence[DivisionFeature], level_of: Mapping[str, DivisionLevel]) -> list[Problem]:
    """Every non-county division has a known parent of the level above, and extends its code.

    非区县区划须有上一层级的已知上级，且编码以上级编码为前缀。
    """
    problems: list[Problem] = []
    add = problems.append
    for i, feature in enumerate(features):
        props = feature.properties
        if props.level == "county":
            continue
        base = join_path("divisions", "features", i, "properties")
        want = PARENT_LEVEL[props.level]
        parent = props.parent_code
        if parent is None:
            add(Problem(f"{base}.parent_code", f"a {props.level} needs a parent {want}"))
            continue
        if parent not in level_of:
            add(Problem(f"{base}.parent_code", f"unknown parent code {parent}"))
            continue
        if level_of[parent] != want:
            add(
                Problem(
                    f"{base}.parent_code",
                    f"parent {parent} is a {level_of[parent]}; a {props.level}'s parent must be a {want}",
                )
            )
        if not props.code.startswith(parent) or props.code == parent:
            add(Problem(f"{base}.code", f"code {props.code} does not extend its parent's code {parent}"))
    return problems
