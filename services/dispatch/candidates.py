"""Candidate units (候选承办单位): who may handle a case, in order — routing's step 4.

The rule's unit first (if a rule names one), then the jurisdiction chain: devolved
(下放) or entrusted (委托) by the entry in force at the report time → the township's unit
for the matter's township function; the stationed
agency (派驻机构) of the holding department covering the township; the county
department itself (吹哨报到). Each unit appears once; units that rejected the case
(退单单位) are skipped by routing and the next candidate is taken. An ``assist`` (协助)
entry leaves the chain to the agency or department; the township unit co-handles (协办,
:func:`assist_unit`). 委托按下放派遣；协助由派驻机构/县级部门主办，镇街单位协办。
规则单位在前，其后为属地默认链（下放单位 → 派驻机构 → 县级部门），每个单位只出现一次。
Pure code: no I/O. 纯计算，无 I/O。
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from services.dispatch.classification import classify
from services.dispatch.placement import division_name, locate_event
from services.dispatch.rules import first_matching_rule, rule_facts
from shared.events import IncidentReported
from shared.jurisdiction import DevolutionEntry, JurisdictionSnapshot, Matter, Rule, Unit
from shared.jurisdiction.devolution import entry_text, is_dated

__all__ = [
    "Candidate",
    "DecidedBy",
    "assist_unit",
    "candidates",
    "cohandlers_of",
    "unit_candidates",
    "unit_name",
]

DecidedBy = Literal["rule", "devolved", "entrusted", "stationed_agency", "county_department"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One unit that may handle the case, and which step names it. 候选承办单位。

    ``unit`` is ``None`` when the step names no unit at all (e.g. the township has
    no unit for the matter's function); ``exists`` is False when the id is not in
    the snapshot. 步骤未给出单位时 ``unit`` 为 None；单位不在快照中时 ``exists`` 为 False。
    """

    unit: str | None
    decided_by: DecidedBy
    exists: bool
    why_zh: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form. 可序列化形式。"""
        return {"unit": self.unit, "decided_by": self.decided_by, "exists": self.exists, "why_zh": self.why_zh}


def unit_name(snapshot: JurisdictionSnapshot, unit_id: str | None) -> str:
    """The unit's name, else its id, else 无. 单位名称。"""
    unit = snapshot.unit(unit_id) if unit_id else None
    return unit.name if unit is not None else (unit_id or "（无）")


def _basis(entry: DevolutionEntry | None) -> str:
    """The entry's clause for an explanation (dated entries only). 条目依据（仅带日期条目）。"""
    return f"（{entry_text(entry)}）" if entry is not None and is_dated(entry) else ""


def _devolved_candidate(
    snapshot: JurisdictionSnapshot, matter: Matter, township: str, town: str, entry: DevolutionEntry, department: str
) -> Candidate:
    """The township unit of a devolved (下放) or entrusted (委托) matter. 下放/委托的镇街承办单位。"""
    unit = snapshot.township_function_unit(township, matter.township_function)
    unit_id = snapshot.township_functions(township).get(matter.township_function)
    how = "已下放至" if entry.mode == "devolved" else f"由{department}委托"
    basis = _basis(entry)
    if unit is not None:
        why = f"事项「{matter.name}」{how}{town}{basis}：由{unit.name}承办（职能 {matter.township_function}）"
        if entry.mode == "entrusted":
            why += f"，以{department}名义执法（执法主体：{department}）"
    elif unit_id is not None:
        why = f"事项「{matter.name}」{how}{town}{basis}，但职能 {matter.township_function} 的单位 {unit_id} 不存在"
    else:
        why = f"事项「{matter.name}」{how}{town}{basis}，但{town}没有承担职能 {matter.township_function} 的单位"
    decided_by: DecidedBy = "devolved" if entry.mode == "devolved" else "entrusted"
    return Candidate(unit_id, decided_by, unit is not None, why)


def _jurisdiction_chain(
    snapshot: JurisdictionSnapshot, matter: Matter, township: str, entry: DevolutionEntry | None
) -> list[Candidate]:
    """Step 4 and its fall-backs: devolved unit, stationed agency, county department. 属地默认链。"""
    town = division_name(snapshot, township)
    department = snapshot.county_department(matter.department) or snapshot.unit(matter.department)
    department_name = department.name if department is not None else matter.department
    chain: list[Candidate] = []
    if entry is not None and entry.mode != "assist":
        chain.append(_devolved_candidate(snapshot, matter, township, town, entry, department_name))
    not_devolved = (
        f"事项「{matter.name}」未下放至{town}" if entry is None else f"事项「{matter.name}」由{town}协助{_basis(entry)}"
    )
    agency = snapshot.stationed_agency(matter.department, township)
    if agency is not None:
        if chain:
            why = f"{department_name}派驻{town}的{agency.name}（派驻机构，候补）"
        else:
            why = f"{not_devolved}：由{department_name}派驻的{agency.name}承办（派驻机构覆盖{town}）"
        chain.append(Candidate(agency.id, "stationed_agency", True, why))
    if chain:
        why = f"{department_name}（县级部门，吹哨报到，候补）"
    else:
        why = f"{not_devolved}，且{department_name}无派驻机构覆盖{town}：由{department_name}承办（吹哨报到）"
    chain.append(Candidate(matter.department, "county_department", department is not None, why))
    return chain


def unit_candidates(
    snapshot: JurisdictionSnapshot,
    matter: Matter,
    township: str,
    rule: Rule | None,
    entry: DevolutionEntry | None = None,
) -> list[Candidate]:
    """Rule unit first (if the rule names one), then the jurisdiction chain, each unit once. 候选列表。"""
    out: list[Candidate] = []
    if rule is not None and rule.action.unit:
        unit_id = rule.action.unit
        exists = snapshot.unit(unit_id) is not None
        desc = f"：{rule.description}" if rule.description else ""
        why = f"规则 {rule.id}（优先级 {rule.priority}）命中{desc}：由{unit_name(snapshot, unit_id)}主办"
        out.append(Candidate(unit_id, "rule", exists, why))
    seen = {c.unit for c in out}
    for candidate in _jurisdiction_chain(snapshot, matter, township, entry):
        if candidate.unit is None or candidate.unit not in seen:
            out.append(candidate)
            seen.add(candidate.unit)
    return out


def candidates(
    event: IncidentReported, snapshot: JurisdictionSnapshot, *, matter: str | None = None
) -> list[Candidate]:
    """Ordered candidate units for ``event`` (rule unit, devolved unit, agency, department).

    按顺序的候选承办单位。Empty when the event cannot be located or categorised.
    ``matter`` overrides the mapped matter (a dispatcher's manual decision). 可指定事项覆盖映射。
    """
    placement = locate_event(event, snapshot)
    found = snapshot.matter(matter) if matter else classify(event, snapshot)
    if placement is None or placement.township is None or found is None:
        return []
    rule = first_matching_rule(snapshot, rule_facts(event, placement, found.code))
    entry = snapshot.devolution_at(placement.township, found.code, event.reported_at)
    return unit_candidates(snapshot, found, placement.township, rule, entry)


def assist_unit(
    snapshot: JurisdictionSnapshot, matter: Matter, township: str, entry: DevolutionEntry | None
) -> Unit | None:
    """The township unit that co-handles (协办) under an ``assist`` entry, if it exists. 协助时的镇街协办单位。"""
    if entry is None or entry.mode != "assist":
        return None
    return snapshot.township_function_unit(township, matter.township_function)


def cohandlers_of(snapshot: JurisdictionSnapshot, rule: Rule | None, primary: Unit) -> tuple[str, ...]:
    """Existing co-handling units of the rule, never the primary unit. 规则的协办单位（去掉主办与不存在者）。"""
    if rule is None or not rule.action.cohandlers:
        return ()
    return tuple(dict.fromkeys(u for u in rule.action.cohandlers if u != primary.id and snapshot.unit(u) is not None))
