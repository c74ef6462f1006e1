"""Checks of the override rules 派遣规则校验: ids, priorities, conditions and actions against known identifiers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence, Set
from dataclasses import dataclass

from shared.jurisdiction.limits import MAX_DEADLINE_HOURS, MAX_RULE_PRIORITY
from shared.jurisdiction.model import JurisdictionBundle, Rule, RuleAction, RuleConditions
from shared.jurisdiction.problems import Problem, join_path
from shared.jurisdiction.validation.matters import hours_ok

__all__ = ["RuleRefs", "check_rules", "refs_from_bundle"]

_CONDITIONS: tuple[str, ...] = ("matter", "township", "grid", "source", "appeal_type", "urgency", "keywords")


@dataclass(slots=True)
class RuleRefs:
    """Known identifiers that rules may reference. 规则可引用的标识集合。"""

    townships: Set[str]
    grids: Set[str]
    matters: Set[str]
    units: Set[str]


def refs_from_bundle(bundle: JurisdictionBundle) -> RuleRefs:
    """Identifiers a rule may reference, taken from a bundle. 从数据包收集可引用标识。"""
    levels: dict[str, set[str]] = defaultdict(set)
    for feature in bundle.divisions.features:
        levels[feature.properties.level].add(feature.properties.code)
    return RuleRefs(
        townships=levels["township"],
        grids=levels["grid"],
        matters={m.code for m in bundle.matters},
        units={u.id for u in bundle.units},
    )


def check_rules(rules: Sequence[Rule], refs: RuleRefs) -> list[Problem]:
    """Problems of a rule set against known identifiers. 规则集校验。

    Per rule: id and priority (unique), conditions (non-empty, known), action
    (known units, deadline range, does something). 逐条检查 id 与优先级、条件、动作。
    """
    problems: list[Problem] = []
    ids: dict[str, int] = {}
    priorities: dict[int, int] = {}
    for i, rule in enumerate(rules):
        base = join_path("rules", i)
        if not rule.id.strip():
            problems.append(Problem(f"{base}.id", "rule id is empty"))
        if rule.id in ids:
            problems.append(Problem(f"{base}.id", f"duplicate rule id {rule.id} (first at rules[{ids[rule.id]}])"))
        else:
            ids[rule.id] = i
        if not 0 <= rule.priority <= MAX_RULE_PRIORITY:
            problems.append(
                Problem(f"{base}.priority", f"priority {rule.priority} is out of range (0–{MAX_RULE_PRIORITY})")
            )
        if rule.priority in priorities:
            problems.append(
                Problem(
                    f"{base}.priority",
                    f"duplicate priority {rule.priority} "
                    f"(rules[{priorities[rule.priority]}]): the order would be ambiguous",
                )
            )
        else:
            priorities[rule.priority] = i
        problems.extend(_condition_problems(rule.conditions, f"{base}.conditions", refs))
        problems.extend(_action_problems(rule.action, f"{base}.action", refs))
    return problems


def _condition_problems(cond: RuleConditions, base: str, refs: RuleRefs) -> list[Problem]:
    """Empty lists never match; matters, townships and grids must be known; keywords non-blank."""
    problems: list[Problem] = []
    known: dict[str, Set[str]] = {"matter": refs.matters, "township": refs.townships, "grid": refs.grids}
    for name in _CONDITIONS:
        values: list[str] | None = getattr(cond, name)
        if values is None:
            continue
        if not values:
            problems.append(Problem(f"{base}.{name}", "empty list never matches: omit the condition instead"))
            continue
        if name in known:
            pool = known[name]
            for k, value in enumerate(values):
                if value not in pool:
                    problems.append(Problem(f"{base}.{name}[{k}]", f"unknown {name} {value}"))
        elif name == "keywords":
            for k, value in enumerate(values):
                if not value.strip():
                    problems.append(Problem(f"{base}.keywords[{k}]", "empty keyword matches everything"))
    return problems


def _action_problems(action: RuleAction, base: str, refs: RuleRefs) -> list[Problem]:
    """Known primary and co-handling units (each once), deadline in range, and some effect."""
    problems: list[Problem] = []
    if action.unit is not None and action.unit not in refs.units:
        problems.append(Problem(f"{base}.unit", f"unknown unit {action.unit}"))
    seen: set[str] = set()
    for k, unit_id in enumerate(action.cohandlers or []):
        p = f"{base}.cohandlers[{k}]"
        if unit_id not in refs.units:
            problems.append(Problem(p, f"unknown unit {unit_id}"))
        elif unit_id == action.unit:
            problems.append(Problem(p, f"{unit_id} is already the primary unit"))
        elif unit_id in seen:
            problems.append(Problem(p, f"{unit_id} listed twice"))
        seen.add(unit_id)
    if action.deadline_hours is not None and not hours_ok(action.deadline_hours):
        problems.append(
            Problem(
                f"{base}.deadline_hours",
                f"{action.deadline_hours} h is out of range (0 < h ≤ {MAX_DEADLINE_HOURS})",
            )
        )
    if action.unit is None and not action.cohandlers and action.deadline_hours is None:
        problems.append(Problem(base, "the action does nothing: name a unit, cohandlers or deadline_hours"))
    return problems
