"""Override rules (派遣规则): which rule, if any, decides a case — routing's step 3.

The first rule by (priority, id) whose every listed condition holds wins; its id and
the rule-set version are recorded with the decision. 按优先级第一条全部条件满足的规则命中，
记录规则 id 与规则集版本。Pure code: no I/O. 纯计算，无 I/O。
"""

from __future__ import annotations

from dataclasses import dataclass

from services.dispatch.placement import Placement
from shared.events import IncidentReported
from shared.jurisdiction import JurisdictionSnapshot, Rule

__all__ = ["RuleFacts", "first_matching_rule", "rule_facts", "rule_matches"]

_LIST_CONDITIONS: tuple[str, ...] = ("matter", "township", "grid", "source", "appeal_type", "urgency")


@dataclass(frozen=True, slots=True)
class RuleFacts:
    """What is known about an event when rules are evaluated. 规则匹配时的事件要素。"""

    matter: str | None = None
    township: str | None = None
    grid: str | None = None
    source: str | None = None
    appeal_type: str | None = None
    urgency: str | None = None
    #: Free text searched for keywords (title + content + address …). 关键词匹配文本。
    text: str = ""


def rule_matches(rule: Rule, facts: RuleFacts) -> bool:
    """Whether every listed condition of ``rule`` holds for ``facts``. 规则是否命中。

    A list condition holds when the fact is one of its values (an unknown fact
    never matches); ``keywords`` holds when any keyword occurs in ``facts.text``
    (case-insensitive). 关键词任一出现在文本中即满足（不区分大小写）。
    """
    cond = rule.conditions
    for name in _LIST_CONDITIONS:
        values: list[str] | None = getattr(cond, name)
        if values is not None and getattr(facts, name) not in values:
            return False
    if cond.keywords is not None:
        text = facts.text.casefold()
        if not any(kw.strip() and kw.casefold() in text for kw in cond.keywords):
            return False
    return True


def first_matching_rule(snapshot: JurisdictionSnapshot, facts: RuleFacts) -> Rule | None:
    """The first rule of ``snapshot`` (by priority, then id) matching ``facts``. 第一条命中的规则。"""
    for rule in snapshot.rules:
        if rule_matches(rule, facts):
            return rule
    return None


def rule_facts(event: IncidentReported, placement: Placement | None, matter: str | None) -> RuleFacts:
    """The facts rules are matched against (keywords: title + description). 规则匹配要素。"""
    text = "\n".join(part for part in (event.title, event.description) if part)
    return RuleFacts(
        matter=matter,
        township=placement.township if placement else None,
        grid=placement.grid if placement else None,
        source=event.source,
        appeal_type=event.appeal_type,
        urgency=event.urgency,
        text=text,
    )
