"""Routing (派遣路由): which unit handles an incident, by when, and why.

A *pure* module: no I/O, no clock (``now`` is passed in), no database. :func:`route`
takes the five steps of the team's domain notes (jurisdiction.md) in order:
纯函数模块（无 I/O、无时钟、无数据库），按领域笔记 jurisdiction.md 的五个步骤依次决策：

1. **Where 定位** — :mod:`services.dispatch.placement`: point in a grid → the code
   the source sent → point in a village/township → address text; else triage
   ``unlocated``. 坐标落格 → 上报编码 → 坐标落村/镇 → 地址文本 → 转人工（无法定位）。
2. **What 定性** — :mod:`services.dispatch.classification`: the source's own
   category code → matter; no mapping → triage ``uncategorised``. 来源编码 → 事项。
3. **Override rules 派遣规则** — :mod:`services.dispatch.rules`: first matching rule
   by priority; the rule id and the rule-set version are recorded. 第一条命中的规则，记录规则 id 与版本。
4. **Default by jurisdiction 属地默认** — :mod:`services.dispatch.candidates`: the
   rule's unit, then devolved (下放) → township unit, stationed agency (派驻机构),
   county department (吹哨报到); units that rejected the case (退单单位) are skipped
   and the next candidate is taken. A unit that does not exist → triage ``no_unit``;
   never an exception. 单位不存在则转人工，绝不抛异常；已退单单位跳过，取下一候选。
5. **Deadline 时限** — matter deadline for the urgency (a rule's
   ``deadline_hours`` overrides it), in working or natural time by the matter's
   basis (``critical`` always natural), plus the 签收 deadline (1 working day)
   and the 退单 window (2 working days). 办结期限、签收期限、退单时限。

Every :class:`RoutingDecision` carries a plain-Chinese ``explanation_zh`` and a
structured ``explanation`` dict, so a dispatcher can see and an auditor can
replay why a case went where it went. 每个决策都有中文说明与结构化说明，可审计、可回放。
A batch shares one :class:`~services.dispatch.routing_memo.RoutingMemo` (the lookups above,
memoised). 一批报告共用一个记忆化对象。
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from services.dispatch.candidates import Candidate, DecidedBy, cohandlers_of, unit_name
from services.dispatch.deadlines import amount_text, time_basis_for
from services.dispatch.devolution import entry_facts, entry_for, recorded_entry, with_assist
from services.dispatch.placement import CODE_FIELDS, Placement, locate_event
from services.dispatch.routing_memo import RoutingMemo
from services.dispatch.rules import rule_facts
from shared.calendar import WorkingCalendar
from shared.events import IncidentReported
from shared.jurisdiction import DeadlineAmount, DevolutionEntry, JurisdictionSnapshot, Matter, Rule, Unit, WorkingDays
from shared.vocabulary import TimeBasis

__all__ = [
    "Outcome",
    "RoutingDecision",
    "TriageReason",
    "route",
]

Outcome = Literal["dispatch", "triage", "self_handled"]
TriageReason = Literal["unlocated", "uncategorised", "no_unit", "no_candidate_left", "low_confidence"]

_DECIDED_LABELS: dict[str, str] = {
    "rule": "派遣规则",
    "devolved": "属地下放",
    "entrusted": "委托执法",
    "stationed_agency": "派驻机构",
    "county_department": "县级部门",
}
_TRIAGE_LABELS: dict[str, str] = {
    "unlocated": "无法定位",
    "uncategorised": "无法定性（来源分类未映射到事项）",
    "no_unit": "承办单位不存在",
    "no_candidate_left": "候选单位均已退单",
}
_BASIS_LABELS = {"working": "工作时", "natural": "自然时"}
_URGENCY_LABELS = {"normal": "一般件", "urgent": "紧急件", "critical": "特急件"}


# --------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class RoutingDecision:
    """The routing result (派遣决策) with everything needed to explain and replay it."""

    outcome: Outcome
    decided_at: datetime
    jurisdiction_version: int
    rules_version: int
    triage_reason: TriageReason | None = None
    placement: Placement | None = None
    matter: str | None = None
    matter_name: str | None = None
    matter_group: str | None = None
    unit: str | None = None
    unit_name: str | None = None
    unit_kind: str | None = None
    cohandlers: tuple[str, ...] = ()
    decided_by: DecidedBy | None = None
    rule_id: str | None = None
    devolved: bool | None = None
    devolution_entry: dict[str, Any] | None = None
    enforcement_subject: str | None = None
    deadline: datetime | None = None
    deadline_hours: float | None = None
    deadline_working_days: int | None = None
    time_basis: TimeBasis | None = None
    provisional: bool = False
    accept_deadline: datetime | None = None
    reject_window_ends_at: datetime | None = None
    candidates: tuple[Candidate, ...] = ()
    skipped_units: tuple[str, ...] = ()
    explanation_zh: str = ""
    explanation: dict[str, Any] = field(default_factory=dict)

    @property
    def township(self) -> str | None:
        """Township code of the placement. 所属乡镇。"""
        return self.placement.township if self.placement else None

    @property
    def grid(self) -> str | None:
        """Grid code of the placement. 所属网格。"""
        return self.placement.grid if self.placement else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored with the case). 可序列化形式（随案件存储）。"""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "outcome": self.outcome,
            "decided_at": iso(self.decided_at),
            "jurisdiction_version": self.jurisdiction_version,
            "rules_version": self.rules_version,
            "triage_reason": self.triage_reason,
            "placement": self.placement.to_dict() if self.placement else None,
            "matter": self.matter,
            "matter_name": self.matter_name,
            "matter_group": self.matter_group,
            "unit": self.unit,
            "unit_name": self.unit_name,
            "unit_kind": self.unit_kind,
            "cohandlers": list(self.cohandlers),
            "decided_by": self.decided_by,
            "rule_id": self.rule_id,
            "devolved": self.devolved,
            "deadline": iso(self.deadline),
            "deadline_hours": self.deadline_hours,
            "deadline_working_days": self.deadline_working_days,
            "time_basis": self.time_basis,
            "provisional": self.provisional,
            "accept_deadline": iso(self.accept_deadline),
            "reject_window_ends_at": iso(self.reject_window_ends_at),
            "candidates": [c.to_dict() for c in self.candidates],
            "skipped_units": list(self.skipped_units),
            "explanation_zh": self.explanation_zh,
            "explanation": self.explanation,
        } | recorded_entry(vars(self))


@dataclass(slots=True)
class _Trail:
    """The explanation being written: one machine-readable step and Chinese sentences per step."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


def route(
    event: IncidentReported,
    snapshot: JurisdictionSnapshot,
    *,
    now: datetime,
    calendar: WorkingCalendar,
    exclude_units: Iterable[str] = frozenset(),
    matter: str | None = None,
    memo: RoutingMemo | None = None,
) -> RoutingDecision:
    """Decide where ``event`` goes (派遣决策). Pure; never raises on data problems.

    ``now`` (timezone-aware) is the dispatch moment deadlines count from;
    ``exclude_units`` are skipped (退单单位); ``matter`` overrides the mapped matter
    (manual decision 人工指定事项). 纯函数；数据问题转人工，不抛异常。
    ``memo``: a :class:`RoutingMemo` of this snapshot and calendar shared by many calls (a
    batch); the decision is the same without it. 批量路由时共享的记忆化对象，不影响结果。
    The five steps — where, what, rule, unit, deadline — are the functions below, in order.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if memo is None or not memo.serves(snapshot, calendar):
        memo = RoutingMemo(snapshot, calendar)
    base: dict[str, Any] = {
        "decided_at": now,
        "jurisdiction_version": snapshot.version,
        "rules_version": snapshot.rules_version,
    }
    trail = _Trail()
    placement = _where(event, snapshot, memo, trail)
    found = _what(event, snapshot, memo, matter, trail)
    facts_common: dict[str, Any] = {
        "placement": placement,
        "matter": found.code if found else None,
        "matter_name": found.name if found else None,
        "matter_group": found.group if found else None,
    }

    # Self-handled reports are recorded and counted, never dispatched. 自办件只记录不派遣。
    if event.self_handled:
        trail.texts.append("网格员已当场自办：只记录、计入统计，不派遣")
        trail.steps.append({"step": "self_handled", "worker_id": event.worker_id})
        return _decision("self_handled", base, facts_common, trail.steps, trail.texts)

    if placement is None or placement.township is None:
        return _triage("unlocated", base, facts_common, trail.steps, trail.texts)
    if found is None:
        return _triage("uncategorised", base, facts_common, trail.steps, trail.texts)
    township = placement.township
    entry = entry_for(snapshot, event, township, found)
    facts_common.update(entry_facts(found, entry))

    rule = _rule(event, snapshot, memo, placement, found, trail)
    chosen = _unit(snapshot, memo, found, township, rule, frozenset(exclude_units), entry, facts_common, trail)
    if isinstance(chosen, str):
        return _triage(chosen, base, facts_common, trail.steps, trail.texts)
    unit, candidate, cohandlers = chosen
    timing = _deadline(event, found, rule, now, memo, trail)
    return _decision(
        "dispatch",
        base,
        {
            **facts_common,
            "unit": unit.id,
            "unit_name": unit.name,
            "unit_kind": unit.kind,
            "cohandlers": cohandlers,
            "decided_by": candidate.decided_by,
            "rule_id": rule.id if rule is not None else None,
            **timing,
        },
        trail.steps,
        trail.texts,
        rule=rule,
    )


def _where(
    event: IncidentReported, snapshot: JurisdictionSnapshot, memo: RoutingMemo, trail: _Trail
) -> Placement | None:
    """Step 1, where 定位: the point, else the codes, else the address."""
    placement = locate_event(event, snapshot, memo)
    if placement is not None:
        trail.steps.append({"step": "where", **placement.to_dict()})
        trail.texts.append(memo.where_zh(placement))
    else:
        trail.steps.append({"step": "where", "method": None, "tried": _tried(event)})
        trail.texts.append("定位：坐标未落入任何网格，上报编码与地址文本均无法匹配到乡镇")
    return placement


def _what(
    event: IncidentReported, snapshot: JurisdictionSnapshot, memo: RoutingMemo, matter: str | None, trail: _Trail
) -> Matter | None:
    """Step 2, what 定性: the matter named by hand, else the source's category through its mapping."""
    found = snapshot.matter(matter) if matter else memo.classify(event.source, event.category_key)
    if found is not None:
        how = "人工指定" if matter else f"{event.source} 分类 {event.category_key} 映射"
        trail.steps.append({"step": "what", "matter": found.code, "name": found.name, "via": how})
        trail.texts.append(f"定性：{how}为事项「{found.name}」（{found.code}）")
    else:
        trail.steps.append({"step": "what", "matter": None, "source": event.source, "category_key": event.category_key})
        trail.texts.append(f"定性：{event.source} 分类 {event.category_key!r} 没有对应事项")
    return found


def _rule(
    event: IncidentReported,
    snapshot: JurisdictionSnapshot,
    memo: RoutingMemo,
    placement: Placement,
    found: Matter,
    trail: _Trail,
) -> Rule | None:
    """Step 3, the county's override rules 派遣规则: the first that matches, if any."""
    rule = memo.first_matching_rule(rule_facts(event, placement, found.code))
    if rule is not None:
        trail.steps.append(
            {
                "step": "rule",
                "rule_id": rule.id,
                "priority": rule.priority,
                "description": rule.description,
                "rules_version": snapshot.rules_version,
                "action": rule.action.model_dump(exclude_none=True),
            }
        )
        trail.texts.append(
            f"规则：命中规则 {rule.id}（优先级 {rule.priority}，规则集版本 {snapshot.rules_version}）"
            + (f"「{rule.description}」" if rule.description else "")
        )
    else:
        trail.steps.append({"step": "rule", "rule_id": None, "rules_version": snapshot.rules_version})
        trail.texts.append(f"规则：无规则命中（规则集版本 {snapshot.rules_version}），按属地默认")
    return rule


def _unit(
    snapshot: JurisdictionSnapshot,
    memo: RoutingMemo,
    found: Matter,
    township: str,
    rule: Rule | None,
    excluded: frozenset[str],
    entry: DevolutionEntry | None,
    facts_common: dict[str, Any],
    trail: _Trail,
) -> tuple[Unit, Candidate, tuple[str, ...]] | TriageReason:
    """Step 4, the unit 属地默认: the first candidate that did not reject the case, or why none."""
    listed = memo.candidates(found, township, rule, entry)
    skipped = tuple(c.unit for c in listed if c.unit is not None and c.unit in excluded)
    chosen = next((c for c in listed if c.unit is None or c.unit not in excluded), None)
    facts_common["candidates"] = tuple(listed)
    facts_common["skipped_units"] = skipped
    if skipped:
        trail.texts.append("已跳过退单单位：" + "、".join(unit_name(snapshot, u) for u in skipped))
    if chosen is None:
        trail.steps.append({"step": "unit", "candidates": [c.to_dict() for c in listed], "skipped": list(skipped)})
        return "no_candidate_left"
    if not chosen.exists or chosen.unit is None:
        trail.steps.append({"step": "unit", "chosen": chosen.to_dict(), "skipped": list(skipped)})
        trail.texts.append(chosen.why_zh if chosen.unit is None else f"{chosen.why_zh}；单位 {chosen.unit} 不存在")
        return "no_unit"
    unit = snapshot.unit(chosen.unit)
    assert unit is not None
    trail.texts.append(chosen.why_zh)
    cohandlers, assisting = with_assist(snapshot, found, township, entry, unit, cohandlers_of(snapshot, rule, unit))
    if assisting:
        trail.texts.append(assisting)
    if cohandlers:
        trail.texts.append("协办：" + "、".join(unit_name(snapshot, u) for u in cohandlers))
    step = {
        "step": "unit",
        "decided_by": chosen.decided_by,
        "unit": unit.id,
        "unit_name": unit.name,
        "unit_kind": unit.kind,
        "devolved": facts_common["devolved"],
        "cohandlers": list(cohandlers),
        "skipped": list(skipped),
    }
    trail.steps.append(step | recorded_entry(facts_common))
    return unit, chosen, cohandlers


def _deadline(
    event: IncidentReported, found: Matter, rule: Rule | None, now: datetime, memo: RoutingMemo, trail: _Trail
) -> dict[str, Any]:
    """Step 5, the deadlines 时限 (rules in :mod:`services.dispatch.deadlines`); the decision's fields."""
    overridden = rule is not None and rule.action.deadline_hours is not None
    amount: DeadlineAmount | None = (
        rule.action.deadline_hours if overridden and rule is not None else found.deadlines.for_urgency(event.urgency)
    )
    assert amount is not None
    if not isinstance(amount, WorkingDays):
        amount = float(amount)
    hours = None if isinstance(amount, WorkingDays) else amount
    days = amount.working_days if isinstance(amount, WorkingDays) else None
    basis = time_basis_for(event.urgency, found.time_basis)
    timing = memo.deadline_facts(now, amount, basis)
    due_at, accept, window, provisional = timing.due_at, timing.accept, timing.window, timing.provisional
    source_of_hours = (
        f"规则 {rule.id} 覆盖"
        if overridden and rule is not None
        else f"事项「{found.name}」{_URGENCY_LABELS.get(event.urgency, event.urgency)}"
    )
    trail.texts.append(
        f"时限：{source_of_hours} {amount_text(amount)}（{_BASIS_LABELS[basis]}"
        + ("，特急件一律按自然时" if event.urgency == "critical" and found.time_basis == "working" else "")
        + f"），办结期限 {memo.fmt(due_at)}；签收期限 {memo.fmt(accept)}；退单时限 {memo.fmt(window)}"
        + ("（日历暂定）" if provisional else "")
    )
    trail.steps.append(
        {
            "step": "deadline",
            "hours": hours,
            "working_days": days,
            "overridden_by_rule": overridden,
            "time_basis": basis,
            "urgency": event.urgency,
            "deadline": due_at.isoformat(),
            "accept_deadline": accept.isoformat(),
            "reject_window_ends_at": window.isoformat(),
            "provisional": provisional,
        }
    )
    return {
        "deadline": due_at,
        "deadline_hours": hours,
        "deadline_working_days": days,
        "time_basis": basis,
        "provisional": provisional,
        "accept_deadline": accept,
        "reject_window_ends_at": window,
    }


def _tried(event: IncidentReported) -> dict[str, Any]:
    return {
        "point": [event.location.lng, event.location.lat] if event.location else None,
        **{name: getattr(event, name) for name in CODE_FIELDS},
        "address": event.address,
    }


def _triage(
    reason: TriageReason,
    base: dict[str, Any],
    facts: dict[str, Any],
    steps: list[dict[str, Any]],
    texts: list[str],
) -> RoutingDecision:
    texts.append(f"转人工分拨：{_TRIAGE_LABELS[reason]}")
    steps.append({"step": "triage", "reason": reason})
    return _decision("triage", base, {**facts, "triage_reason": reason}, steps, texts)


def _decision(
    outcome: Outcome,
    base: dict[str, Any],
    facts: dict[str, Any],
    steps: list[dict[str, Any]],
    texts: Sequence[str],
    *,
    rule: Rule | None = None,
) -> RoutingDecision:
    decided_by = facts.get("decided_by")
    explanation: dict[str, Any] = {
        "outcome": outcome,
        "jurisdiction_version": base["jurisdiction_version"],
        "rules_version": base["rules_version"],
        "matched_rule": rule.id if rule is not None else None,
        "decided_by": decided_by,
        "decided_by_zh": _DECIDED_LABELS.get(decided_by) if decided_by else None,
        "triage_reason": facts.get("triage_reason"),
        "steps": steps,
    }
    return RoutingDecision(
        outcome=outcome,
        **base,
        **facts,
        explanation_zh="；".join(texts) + "。",
        explanation=explanation,
    )
