"""Metrics' response models (绩效考核服务应答模型); see :mod:`shared.answers`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.answers import Answer


class PeriodInfo(Answer):
    """An assessment period 考核周期 (half-open ``[start, end)``, Asia/Shanghai)."""

    id: str
    kind: str
    start: str
    end: str


class Indicators(Answer):
    """Indicators per group for a period, and the total 分组指标与合计."""

    period: PeriodInfo
    as_of: str
    group_by: list[str]
    filters: dict[str, Any]
    rows: list[dict[str, Any]]
    total: dict[str, Any]


class CaseDurations(Answer):
    """One case's natural and working durations and counts 案件办理时长（自然时与工作时）."""

    case_id: str
    unit: str | None
    township: str | None
    source: str | None
    matter: str | None
    deadline: str | None
    overdue: bool | None
    handling: dict[str, Any]
    closing: dict[str, Any]
    counts: dict[str, int]


class Scheme(Answer):
    """An assessment scheme 考核方案 (as in ``deploy/assessment/*.yaml``) with its total weight."""

    id: str
    name: str
    version: int
    kind: str
    indicators: list[dict[str, Any]]
    total_weight: float
    headers: dict[str, str]


class Schemes(Answer):
    """The active assessment schemes 生效的考核方案."""

    schemes: list[Scheme]


class SchemeWithVersions(Scheme):
    """A scheme and its stored versions 方案及其版本."""

    versions: list[dict[str, Any]]


class Rating(Answer):
    """A township's rating of a stationed agency 乡镇对派驻机构的评价."""

    period: str
    township: str
    unit: str
    rating: float
    note: str | None


class Ratings(Answer):
    """Ratings entered for a period 周期乡镇评价."""

    period: str
    ratings: list[dict[str, Any]]


class Scores(Answer):
    """A ranking: published (signed-off period) or live, with the latest revision 得分与排名."""

    scheme: dict[str, Any]
    period: PeriodInfo
    as_of: str
    signed_off: dict[str, Any] | None
    revision: dict[str, Any] | None
    rows: list[dict[str, Any]]


class ScoreCases(Answer):
    """The cases behind a unit's score 得分对应的案件."""

    scheme: str
    period: PeriodInfo
    as_of: str
    unit: str
    township: str | None
    total: int
    limit: int
    offset: int
    cases: list[dict[str, Any]]
    note: str | None


class SignedOff(Answer):
    """A period just signed off 已签发周期."""

    period: str
    signed_at: str
    signed_by: str
    as_of: str
    schemes: dict[str, dict[str, int]]


class PeriodRecord(Answer):
    """A period's sign-off and revisions 签发与修订记录."""

    period: PeriodInfo
    signed_off: dict[str, Any] | None
    revisions: list[dict[str, Any]]


class Recomputed(Answer):
    """Working durations recomputed 重算工作时长结果."""

    changed: int
    seconds: float
    only_provisional: bool


class AccountabilityOperation(Answer):
    """A joint operation behind a 联合执法未报到 finding: when the unit was late (its 报到) or absent
    (the conclusion), the lead unit, the window and the cases linked to it 关联案件."""

    operation_id: str
    at: str
    lead_unit: str
    starts_at: str
    ends_at: str
    cases: list[str]


class AccountabilityFinding(Answer):
    """One line of the 监督问责 report: a unit or department, and the cases behind it."""

    kind: str
    label: str
    township: str | None
    unit: str | None
    count: int = Field(description="cases; for a joint-operation finding, operations 联合执法次数")
    cases: list[str]
    operations: list[AccountabilityOperation] = Field(
        default_factory=list, description="joint-operation findings: the operations 涉及的联合执法"
    )


class Accountability(Answer):
    """The 监督问责 report of a period 监督问责报告 (frozen once the period is signed off)."""

    period: str
    as_of: str
    township: str | None
    signed_off: bool
    signed_at: str | None
    findings: list[AccountabilityFinding]
    not_covered: list[str]


class DispatcherRow(Answer):
    """One dispatcher's hand dispatches in a period 派遣员人工派遣情况."""

    dispatcher: str
    hand_dispatched: int
    accurately_dispatched: int
    accurate_dispatch_rate: float | None


class Dispatchers(Answer):
    """Dispatchers' 准确派遣率 for a period 派遣员准确派遣率."""

    period: str
    as_of: str
    rows: list[DispatcherRow]
