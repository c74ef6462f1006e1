"""A scheme's population 考核口径: which of a unit's cases a scheme scores (pure rule + its SQL).

* ``all`` — every case dispatched to the unit (the default).
* ``whistled`` — 吹哨 cases held by the county department they were whistled to: the department's
  报到 (acknowledged in time), solved and solved in time, as the townships that whistled see it
  (two-way assessment 双向考核: townships assess departments).
* ``devolved`` — cases of matters devolved (下放) to the township: what the departments assess the
  township's units on, and nothing outside it (two-way assessment: departments assess townships).

:func:`in_population` (Python) and :func:`population_clauses` (SQL over ``metrics.case_facts``) are
the same rule; a test compares them. 同一规则的 Python 与 SQL 两种写法。
"""

from __future__ import annotations

from typing import Final, Literal

from sqlalchemy import ColumnElement

from services.metrics.facts import CaseFact
from services.metrics.models import case_facts as F

__all__ = ["POPULATION_LABELS", "Population", "in_population", "population_clauses"]

Population = Literal["all", "whistled", "devolved"]

POPULATION_LABELS: Final = {
    "all": "全部派遣案件",
    "whistled": "吹哨报到案件（乡镇评县级部门）",
    "devolved": "下放事项案件（部门评乡镇）",
}


def in_population(fact: CaseFact, population: Population) -> bool:
    """Whether the case is in a scheme's population (besides the period's). 案件是否属于方案口径。"""
    if population == "whistled":
        return fact.escalated_to is not None and fact.unit == fact.escalated_to
    if population == "devolved":
        return fact.devolved is True
    return True


def population_clauses(population: Population) -> list[ColumnElement[bool]]:
    """The SQL conditions of :func:`in_population`. 口径的 SQL 条件。"""
    if population == "whistled":
        return [F.c.escalated_to.is_not(None), F.c.unit == F.c.escalated_to]
    if population == "devolved":
        return [F.c.devolved.is_(True)]
    return []
