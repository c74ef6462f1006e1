"""What-if 模拟调整: who would carry the load if the devolution list changed (pure).

The team's domain notes ("What-if"): before a county devolves or returns a batch of powers it
takes a proposal (township, matter, mode) and a past period, routes every case of that period
again with pure routing against the changed list — no writes, no events — and answers: the
cases that would move (from which unit to which, per matter), each unit's case count and
working-hour load before and after, and the townships whose load grows past a threshold.
变更前先模拟：按提案改动下放清单，以纯路由重新派遣某一历史期间的全部案件（不写库、不发事件），
给出会改派的案件、各单位案件数与工时负荷的变化、负荷增长超过阈值的镇街。

How it stays exact and fast 精确且快速:

* Where (placement) and what (matter) do not depend on the list: the case's recorded township,
  grid and matter are used. 定位与定性不依赖清单，取案件记录。
* The unit depends only on (matter, township, rule, entry in force); a case outside the
  proposed (township, matter) pairs keeps its recorded unit, both before and after.
  提案之外的案件保持原承办单位。
* The cases of the proposed pairs come grouped by every fact rules and entries read (grid,
  source, appeal type, urgency, report day, and which rule keywords occur in the text — a
  keyword text built from those keywords matches exactly the rules the real text matches).
  Each group is decided once, by the same candidate chain routing uses, before (the list as
  recorded) and after (the proposal), and weighed by its case count.
  提案涉及的案件按规则与条目所读要素分组，每组按与路由相同的候选链决策一次（调整前后各一次）。

Working-hour load 工时负荷 of a case: its 办结 time limit as routing sets it (a rule's
``deadline_hours``, else the matter's deadline for its urgency; working days × the calendar's
hours per day) — the standard hours (时限工时) the unit is given for it.
工时负荷以派遣时限计（规则覆盖时限，否则事项时限；工作日数 × 每日工时）。

Pure code: no I/O. 纯计算，无 I/O。
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.dispatch.candidates import cohandlers_of
from services.dispatch.devolution import with_assist
from services.dispatch.routing_memo import RoutingMemo
from services.dispatch.rules import RuleFacts
from shared.calendar import WorkingCalendar
from shared.jurisdiction import DevolutionEntry, JurisdictionBundle, JurisdictionSnapshot, Problem, Rule, WorkingDays
from shared.jurisdiction.devolution import ProposedItem, all_entries, proposal_entries
from shared.jurisdiction.validation.devolution import check_devolution_entries
from shared.vocabulary import TOWNSHIP_UNIT_KINDS

__all__ = [
    "AffectedGroup",
    "Decided",
    "SettledGroup",
    "WhatIf",
    "case_hours",
    "decide_unit",
    "keyword_list",
    "keyword_text",
    "proposed_snapshot",
    "what_if",
]

#: The unit shown for a case that would go to the manual triage queue. 转人工分拨。
TRIAGE = "（人工分拨）"


@dataclass(frozen=True, slots=True)
class SettledGroup:
    """Cases outside the proposal: their recorded unit, matter, urgency and rule, and how many. 提案外案件。"""

    unit: str | None
    matter: str | None
    urgency: str
    rule_id: str | None
    cases: int


@dataclass(frozen=True, slots=True)
class AffectedGroup:
    """Cases of a proposed (township, matter) sharing every fact routing's unit step reads. 提案涉及的一组案件。

    ``keywords``: the rule keywords (casefolded, :func:`keyword_list`) that occur in the title
    and description. 标题与描述中出现的规则关键词。
    """

    township: str
    matter: str
    grid: str | None
    source: str
    appeal_type: str | None
    urgency: str
    day: date
    keywords: frozenset[str]
    cases: int


@dataclass(frozen=True, slots=True)
class Decided:
    """A unit decision of the what-if: the unit (``None``: triage), co-handlers and the rule. 单位决策。"""

    unit: str | None
    cohandlers: tuple[str, ...]
    rule: Rule | None
    entry: DevolutionEntry | None


@dataclass
class WhatIf:
    """The what-if's answer: moves, unit loads, township loads. 模拟结果。"""

    cases: int = 0
    affected_cases: int = 0
    moved_cases: int = 0
    moves: list[dict[str, Any]] = field(default_factory=list)
    units: list[dict[str, Any]] = field(default_factory=list)
    townships: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form. 可序列化形式。"""
        return {
            "cases": self.cases,
            "affected_cases": self.affected_cases,
            "moved_cases": self.moved_cases,
            "moves": self.moves,
            "units": self.units,
            "townships": self.townships,
        }


def proposed_snapshot(
    snapshot: JurisdictionSnapshot, items: Sequence[ProposedItem]
) -> tuple[JurisdictionSnapshot, list[Problem]]:
    """The snapshot with the proposal in force on every day (the rest as recorded), and its problems.

    提案在整个期间生效的快照（其余按记录），及问题列表（未知镇街/事项、镇街缺少职能单位、重复项）。
    """
    bundle = snapshot.bundle()
    proposed = bundle.model_copy(
        update={"devolution": {}, "devolution_entries": list(proposal_entries(all_entries(bundle), items))}
    )
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for k, item in enumerate(items):
        if (item.township, item.matter) in seen:
            problems.append(Problem(f"items[{k}]", f"matter {item.matter} of township {item.township} proposed twice"))
        seen.add((item.township, item.matter))
    townships = {d.code for d in snapshot.divisions("township")}
    matters = {m.code: m for m in snapshot.matters}
    problems += _item_problems(proposed, items, townships, matters)
    return snapshot.with_devolution(proposed), problems


def _item_problems(
    proposed: JurisdictionBundle, items: Sequence[ProposedItem], townships: set[str], matters: dict[str, Any]
) -> list[Problem]:
    """Problems of the proposal's own entries, with the items' paths. 提案条目的问题。"""
    at = {(i.township, i.matter): k for k, i in enumerate(items)}
    out: list[Problem] = []
    for problem in check_devolution_entries(proposed, townships, matters):
        index = int(problem.path.split("[", 1)[1].split("]", 1)[0]) if "[" in problem.path else -1
        entry = proposed.devolution_entries[index] if 0 <= index < len(proposed.devolution_entries) else None
        if entry is not None and (entry.township, entry.matter) in at:
            out.append(Problem(f"items[{at[(entry.township, entry.matter)]}]", problem.message))
    for k, item in enumerate(items):
        if item.mode == "none" and item.township not in townships:
            out.append(Problem(f"items[{k}].township", f"unknown township {item.township}"))
        if item.mode == "none" and item.matter not in matters:
            out.append(Problem(f"items[{k}].matter", f"unknown matter {item.matter}"))
    return out


def keyword_list(snapshot: JurisdictionSnapshot) -> tuple[str, ...]:
    """Every distinct rule keyword, casefolded, sorted. 全部规则关键词（去重、小写化、排序）。"""
    return tuple(sorted({kw.casefold() for r in snapshot.rules for kw in r.conditions.keywords or () if kw.strip()}))


def keyword_text(keywords: Iterable[str]) -> str:
    """A text that matches exactly the rules the real text matches: the keywords that occur in it.

    只含真实文本中出现的关键词的文本：与真实文本命中的规则完全相同（某关键词若是其中一个的子串，
    它也必出现在真实文本中，因而也在此列）。
    """
    return "\n".join(sorted(keywords))


def case_hours(
    snapshot: JurisdictionSnapshot, calendar: WorkingCalendar, matter: str | None, urgency: str, rule: Rule | None
) -> float:
    """A case's working-hour load: its 办结 time limit as routing sets it. 案件工时负荷（派遣时限）。"""
    if rule is not None and rule.action.deadline_hours is not None:
        return float(rule.action.deadline_hours)
    found = snapshot.matter(matter) if matter else None
    if found is None:
        return 0.0
    amount = found.deadlines.for_urgency(urgency)  # type: ignore[arg-type]
    if isinstance(amount, WorkingDays):
        return amount.working_days * calendar.hours_per_day
    return float(amount)


def decide_unit(memo: RoutingMemo, group: AffectedGroup, entry: DevolutionEntry | None) -> Decided:
    """Routing's steps 3 and 4 for a group: the first rule, then the first candidate (none rejected yet).

    规则与属地默认两步（尚无退单）：与 :func:`services.dispatch.routing.route` 的决策相同。
    """
    snapshot = memo.snapshot
    matter = snapshot.matter(group.matter)
    if matter is None:
        return Decided(None, (), None, entry)
    facts = RuleFacts(
        matter=group.matter,
        township=group.township,
        grid=group.grid,
        source=group.source,
        appeal_type=group.appeal_type,
        urgency=group.urgency,
        text=keyword_text(group.keywords),
    )
    rule = memo.first_matching_rule(facts)
    listed = memo.candidates(matter, group.township, rule, entry)
    chosen = listed[0] if listed else None
    if chosen is None or chosen.unit is None or not chosen.exists:
        return Decided(None, (), rule, entry)
    unit = snapshot.unit(chosen.unit)
    assert unit is not None
    cohandlers, _ = with_assist(snapshot, matter, group.township, entry, unit, cohandlers_of(snapshot, rule, unit))
    return Decided(unit.id, cohandlers, rule, entry)


@dataclass
class _Tally:
    cases: dict[str | None, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0.0, 0.0, 0.0]))

    def add(self, unit: str | None, before: bool, cases: int, hours: float) -> None:
        row = self.cases[unit]
        if before:
            row[0] += cases
            row[2] += hours
        else:
            row[1] += cases
            row[3] += hours


def what_if(
    *,
    before: JurisdictionSnapshot,
    after: JurisdictionSnapshot,
    calendar: WorkingCalendar,
    settled: Iterable[SettledGroup],
    affected: Iterable[AffectedGroup],
    threshold_pct: float,
) -> WhatIf:
    """Route the affected groups before and after, add the settled ones, and summarise. 模拟并汇总。"""
    result = WhatIf()
    tally = _Tally()
    rules = {r.id: r for r in before.rules}
    for kept in settled:
        hours = case_hours(before, calendar, kept.matter, kept.urgency, rules.get(kept.rule_id or ""))
        for side in (True, False):
            tally.add(kept.unit, side, kept.cases, hours * kept.cases)
        result.cases += kept.cases
    memo_before, memo_after = RoutingMemo(before, calendar), RoutingMemo(after, calendar)
    moves: dict[tuple[str, str | None, str | None], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for group in affected:
        old = decide_unit(memo_before, group, before.devolution.on(group.township, group.matter, group.day))
        new = decide_unit(memo_after, group, after.devolution.on(group.township, group.matter, group.day))
        old_hours = case_hours(before, calendar, group.matter, group.urgency, old.rule) * group.cases
        new_hours = case_hours(after, calendar, group.matter, group.urgency, new.rule) * group.cases
        tally.add(old.unit, True, group.cases, old_hours)
        tally.add(new.unit, False, group.cases, new_hours)
        result.cases += group.cases
        result.affected_cases += group.cases
        if old.unit != new.unit:
            result.moved_cases += group.cases
            move = moves[(group.matter, old.unit, new.unit)]
            move[0] += group.cases
            move[1] += new_hours
    result.moves = _moves(before, moves)
    result.units = _units(before, tally)
    result.townships = _townships(before, result.units, threshold_pct)
    return result


def _name(snapshot: JurisdictionSnapshot, unit_id: str | None) -> str:
    if unit_id is None:
        return TRIAGE
    unit = snapshot.unit(unit_id)
    return unit.name if unit is not None else unit_id


def _moves(
    snapshot: JurisdictionSnapshot, moves: dict[tuple[str, str | None, str | None], list[float]]
) -> list[dict[str, Any]]:
    out = []
    for (matter, old, new), (cases, hours) in moves.items():
        found = snapshot.matter(matter)
        out.append(
            {
                "matter": matter,
                "matter_name": found.name if found is not None else matter,
                "from_unit": old,
                "from_name": _name(snapshot, old),
                "to_unit": new,
                "to_name": _name(snapshot, new),
                "cases": int(cases),
                "hours": round(hours, 2),
            }
        )
    return sorted(out, key=lambda m: (-m["cases"], m["matter"], m["from_unit"] or "", m["to_unit"] or ""))


def _units(snapshot: JurisdictionSnapshot, tally: _Tally) -> list[dict[str, Any]]:
    out = []
    for unit_id, (cb, ca, hb, ha) in tally.cases.items():
        unit = snapshot.unit(unit_id) if unit_id else None
        out.append(
            {
                "unit": unit_id,
                "name": _name(snapshot, unit_id),
                "kind": unit.kind if unit is not None else None,
                "township": unit.township_code if unit is not None and unit.kind in TOWNSHIP_UNIT_KINDS else None,
                "cases_before": int(cb),
                "cases_after": int(ca),
                "hours_before": round(hb, 2),
                "hours_after": round(ha, 2),
                "cases_change": int(ca - cb),
                "hours_change": round(ha - hb, 2),
            }
        )
    return sorted(out, key=lambda u: (-abs(u["hours_change"]), u["unit"] or ""))


def _townships(
    snapshot: JurisdictionSnapshot, units: list[dict[str, Any]], threshold_pct: float
) -> list[dict[str, Any]]:
    """Each township's own units (镇内设机构与执法队) summed; growth past ``threshold_pct`` flagged. 镇街负荷。"""
    out = []
    for division in snapshot.divisions("township"):
        own = [u for u in units if u["township"] == division.code]
        cb, ca = sum(u["cases_before"] for u in own), sum(u["cases_after"] for u in own)
        hb, ha = sum(u["hours_before"] for u in own), sum(u["hours_after"] for u in own)
        growth = round((ha - hb) / hb * 100, 2) if hb > 0 else None
        over = (growth is not None and growth > threshold_pct) or (hb == 0 and ha > 0)
        out.append(
            {
                "township": division.code,
                "name": division.name,
                "cases_before": cb,
                "cases_after": ca,
                "hours_before": round(hb, 2),
                "hours_after": round(ha, 2),
                "growth_pct": growth,
                "over_threshold": over,
            }
        )
    return out
