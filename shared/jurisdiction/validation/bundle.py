"""The whole-bundle check 整包校验: every section in order, keeping the parsed geometries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.jurisdiction.model import JurisdictionBundle
from shared.jurisdiction.problems import Problem
from shared.jurisdiction.validation.devolution import check_devolution_entries
from shared.jurisdiction.validation.divisions import check_division_codes, check_division_parents, first_positions
from shared.jurisdiction.validation.geometry import check_geometries
from shared.jurisdiction.validation.links import check_devolution, check_source_mappings, check_township_functions
from shared.jurisdiction.validation.matters import check_matters
from shared.jurisdiction.validation.rules import RuleRefs, check_rules
from shared.jurisdiction.validation.sources import check_alarm_types, check_approval_mappings
from shared.jurisdiction.validation.units import check_units

__all__ = ["Checked", "check_bundle"]


@dataclass(slots=True)
class Checked:
    """Problems of a bundle, and side products reused by the snapshot. 校验结果及其副产品（供快照复用）。"""

    problems: list[Problem]
    #: Valid shapely geometry per division code. 每个区划编码的有效几何。
    geometries: dict[str, Any] = field(default_factory=dict)


def check_bundle(bundle: JurisdictionBundle) -> Checked:
    """Every check, section by section, in bundle order. 依次执行全部校验。"""
    features = bundle.divisions.features
    problems = check_division_codes(bundle)
    first_index = first_positions([f.properties.code for f in features])
    level_of = {code: features[i].properties.level for code, i in first_index.items()}
    problems += check_division_parents(features, level_of)
    geometry_problems, geometries = check_geometries(features, first_index)
    problems += geometry_problems

    townships = {c for c, lvl in level_of.items() if lvl == "township"}
    unit_index = first_positions([u.id for u in bundle.units])
    county_departments = {u.id for u in bundle.units if u.kind == "county_department"}
    problems += check_units(bundle.units, townships)
    problems += check_matters(bundle.matters, county_departments, unit_index)
    matters = {m.code: m for m in bundle.matters}
    problems += check_township_functions(bundle, townships, unit_index)
    problems += check_devolution(bundle, townships, matters)
    problems += check_devolution_entries(bundle, townships, matters)
    problems += check_source_mappings(bundle, set(matters))
    problems += check_approval_mappings(bundle, matters)
    problems += check_alarm_types(bundle)
    refs = RuleRefs(
        townships=townships,
        grids={c for c, lvl in level_of.items() if lvl == "grid"},
        matters=set(matters),
        units=set(unit_index),
    )
    problems += check_rules(bundle.rules, refs)
    return Checked(problems=problems, geometries=geometries)
