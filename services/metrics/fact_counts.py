"""What a case fact counts for 案件事实的计数口径: its 0/1 contribution to its holding unit's count
columns, and to the 退单率 of every other unit that rejected it.

Pure. This is the rule; the SQL in :mod:`services.metrics.queries` mirrors it for the indicators
over many cases, and tests compare the two. 纯函数；queries.py 中的 SQL 与之对应，由测试比对。
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from services.metrics.facts import CaseFact, is_overdue
from services.metrics.indicators import empty_counts
from services.metrics.periods import TZ
from services.metrics.source_facts import in_unit_indicators

__all__ = ["counts_rejection", "fact_counts", "rejecting_units", "unit_counts"]


def counts_rejection(fact: CaseFact) -> bool:
    """The holder rejected the case and the rejection was not ruled valid. 承办单位退单且未被判定有效。

    Such a rejection counts against the holder in 退单率; a valid one never does.
    """
    return fact.unit is not None and fact.unit in fact.rejected_by and fact.unit not in fact.units_rejected_validly


def fact_counts(fact: CaseFact, as_of: datetime) -> dict[str, int]:
    """This case's 0/1 contribution to its unit's count columns as of ``as_of``.

    本案截至 ``as_of`` 对承办单位各计数列的贡献（0 或 1）。

    The population is the cases dispatched to the unit: a case never
    dispatched (e.g. a grid worker's self-handled report), dispatched after
    ``as_of``, or merged into another case contributes nothing. Times are
    judged as of ``as_of``; counters (reworks, extensions, rejections) are
    as of the fact's last event.
    统计口径为派遣给该单位的案件：未派遣（如网格员自处置）、``as_of`` 之后派遣或已并案的不计。
    时间按 ``as_of`` 判断；返工、延期、退单次数按最后事件时的状态。
    """
    counts = empty_counts()
    moment = as_of.replace(tzinfo=TZ) if as_of.tzinfo is None else as_of
    if fact.dispatched_at is None or fact.dispatched_at > moment or fact.merged_into is not None:
        return counts
    if not in_unit_indicators(fact):  # invalid, auto-recovered, or a supervision task 监管任务
        return counts

    def by(t: datetime | None) -> bool:
        return t is not None and t <= moment

    def within(t: datetime | None, limit: datetime | None) -> bool:
        return by(t) and (limit is None or (t is not None and t <= limit))

    counts["dispatched"] = 1
    counts["received"] = 1
    counts["accepted"] = int(by(fact.accepted_at))
    counts["accepted_in_time"] = int(within(fact.accepted_at, fact.accept_deadline))
    counts["responded_in_time"] = counts["accepted_in_time"]
    counts["resolved"] = int(by(fact.resolved_at))
    counts["resolved_on_time"] = int(within(fact.resolved_at, fact.deadline))
    counts["overdue"] = int(is_overdue(fact, moment))
    counts["reworked"] = int(counts["resolved"] == 1 and fact.reworks >= 1)
    counts["rejected"] = int(counts_rejection(fact))
    counts["extended"] = int(fact.extensions >= 1)
    counts["closed"] = int(by(fact.closed_at))
    counts["closed_on_time"] = int(within(fact.closed_at, fact.deadline))
    if fact.satisfaction is not None:
        counts["callbacks_valid"] = 1
        counts["solved"] = int(bool(fact.solved))
        counts["satisfied"] = int(fact.satisfaction == "satisfied")
        counts["basically_satisfied"] = int(fact.satisfaction == "basically_satisfied")
    return counts


def rejecting_units(fact: CaseFact, as_of: datetime) -> list[str]:
    """Units other than the holder whose 退单 of this case counts against them. 计入退单率的其他退单单位。

    退单率 counts every unit that rejected the case, not only the final holder: a unit that
    bounces a case (its rejection not ruled valid) has the case in its population for 退单率
    only (``received`` and ``rejected``, nothing else). A rejection ruled valid never counts:
    the case was outside the unit's remit. 退单单位仅在退单率口径内计入该案；判定有效的退单不计。
    """
    moment = as_of.replace(tzinfo=TZ) if as_of.tzinfo is None else as_of
    if fact.dispatched_at is None or fact.dispatched_at > moment or fact.merged_into is not None:
        return []
    return [u for u in fact.rejected_by if u != fact.unit and u not in fact.units_rejected_validly]


def unit_counts(facts: Iterable[CaseFact], as_of: datetime) -> dict[tuple[str, str | None], dict[str, int]]:
    """Sum :func:`fact_counts` per (holding unit, township), plus each rejecting unit's 退单. 按单位汇总计数。

    Keyed by (unit, township) so an agency serving several townships gets one
    row per township (needed by the township-led 派驻机构 scheme). Cases with
    no holding unit are skipped. A unit that rejected a case it no longer holds gets
    ``received`` + 1 and ``rejected`` + 1 (:func:`rejecting_units`).
    以（单位，乡镇）为键，服务多个乡镇的派驻机构在每个乡镇各有一行。无承办单位的案件不计。
    """
    totals: dict[tuple[str, str | None], dict[str, int]] = {}
    for fact in facts:
        for unit in rejecting_units(fact, as_of):  # also while no unit holds it (e.g. in triage)
            row = totals.setdefault((unit, fact.township), empty_counts())
            row["received"] += 1
            row["rejected"] += 1
        if fact.unit is None:
            continue
        contribution = fact_counts(fact, as_of)
        if not contribution["dispatched"]:
            continue
        row = totals.setdefault((fact.unit, fact.township), empty_counts())
        for key, value in contribution.items():
            row[key] += value
    return totals
