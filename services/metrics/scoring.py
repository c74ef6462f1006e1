"""Assessment schemes (考核方案) and scoring. 考核方案（版本化配置）与评分。

A scheme is versioned configuration: the unit kinds it applies to, weighted
indicators (an indicator that counts against the unit enters as ``1 − rate``),
grade bands, a minimum case count and, for the township-led 派驻机构 scheme
(以乡镇为主), the weight of the township's own rating of the agency.
考核方案是版本化配置：适用单位类型、指标权重（反向指标以 ``1 − 比率`` 计分）、等级线、
最少案件数，以及派驻机构“以乡镇为主”方案中乡镇评价的权重。

Score 得分 = township_rating_weight × rating / 100 + Σ weight × value, with
rates in 0..1 and weights summing to 100, so scores are 0..100 (rounded to
2 decimals; grades, ties and ranks use the rounded score shown to users).
得分 = 乡镇评价权重 × 评价分 / 100 + Σ 权重 × 指标值；保留两位小数，等级与排名均以显示值为准。

Row status 行状态:

* ``scored`` 已评分 — score, grade and ranks.
* ``insufficient_data`` 数据不足 — fewer than ``min_cases`` dispatched cases:
  no score, no grade, no rank (a unit with 1 case at 100 % must not top the table).
* ``incomplete`` 评分不完整 — an indicator has no value (denominator 0, e.g. no
  valid 回访) or the township rating is missing: ``partial_score`` holds the sum
  of the parts that exist, ``missing`` names the rest; no grade, no rank. A
  missing township rating is never read as 0.
  某指标无值（分母为 0）或乡镇评价缺失：``partial_score`` 为已有部分之和，``missing`` 列出缺失项；
  不评等级、不排名。缺失的乡镇评价绝不按 0 计。
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from services.metrics.indicators import (
    DEFAULT_SATISFACTION_FACTOR,
    INDICATOR_LABELS,
    INDICATORS,
    rates_from_counts,
)
from services.metrics.populations import Population
from shared.vocabulary import UnitKind

__all__ = [
    "DEFAULT_GRADE_BANDS",
    "STATUS_LABELS",
    "TOWNSHIP_RATING",
    "UNIT_KIND_LABELS",
    "AssessmentScheme",
    "GradeBand",
    "IndicatorRow",
    "RowStatus",
    "SchemeIndicator",
    "SchemeKind",
    "ScoreRow",
    "load_scheme_file",
    "load_schemes",
    "score_units",
]

SchemeKind = Literal["standard", "township_led"]
RowStatus = Literal["scored", "insufficient_data", "incomplete"]

UNIT_KIND_LABELS: Final[Mapping[str, str]] = {
    "township_office": "乡镇内设机构",
    "enforcement_team": "综合执法队",
    "stationed_agency": "派驻机构",
    "county_department": "县级部门",
}
STATUS_LABELS: Final[Mapping[str, str]] = {
    "scored": "已评分",
    "insufficient_data": "数据不足",
    "incomplete": "评分不完整",
}
TOWNSHIP_RATING: Final = "township_rating"
"""Name of the township-rating part in ``ScoreRow.parts`` / ``missing``. 乡镇评价分项名。"""

_WEIGHT_TOLERANCE: Final = 1e-6


class SchemeIndicator(BaseModel):
    """One weighted indicator of a scheme. 方案中的一个加权指标。"""

    model_config = ConfigDict(frozen=True, extra="forbid")

    indicator: str
    weight: float = Field(gt=0, le=100)
    counts_against: bool = False
    """Enters as ``1 − rate``. 反向计分（1 − 比率）。"""

    @field_validator("indicator")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in INDICATORS:
            raise ValueError(f"unknown indicator {value!r}; known: {', '.join(INDICATORS)}")
        return value

    @model_validator(mode="after")
    def _direction(self) -> SchemeIndicator:
        definition = INDICATORS[self.indicator]
        if definition.lower_is_better != self.counts_against:
            want = "true" if definition.lower_is_better else "false"
            raise ValueError(
                f"indicator {self.indicator} ({definition.name_zh}) is "
                f"{'lower' if definition.lower_is_better else 'higher'}-is-better: "
                f"set counts_against: {want}"
            )
        return self

    def value(self, rate: float | None) -> float | None:
        """The scored value of a rate (``1 − rate`` if it counts against). 计分值。"""
        if rate is None:
            return None
        return 1.0 - rate if self.counts_against else rate


class GradeBand(BaseModel):
    """A grade and its lowest score. 等级及其最低分。"""

    model_config = ConfigDict(frozen=True, extra="forbid")

    grade: str = Field(min_length=1)
    min_score: float = Field(ge=0, le=100)


DEFAULT_GRADE_BANDS: Final[tuple[GradeBand, ...]] = (
    GradeBand(grade="A", min_score=90),
    GradeBand(grade="B", min_score=75),
    GradeBand(grade="C", min_score=60),
    GradeBand(grade="D", min_score=40),
    GradeBand(grade="E", min_score=0),
)


class AssessmentScheme(BaseModel):
    """A versioned assessment scheme. 版本化的考核方案。

    Validation 校验:
    ``indicators`` weights + ``township_rating_weight`` sum to 100 (the error
    names ``indicators`` and the actual sum); indicators unique, their
    ``counts_against`` matching the indicator's direction; grade bands strictly
    descending, unique, ending with a 0 band; ``kind: township_led`` applies to
    ``stationed_agency`` and needs ``township_rating_weight ≥ 50``; a standard
    scheme has no township rating.
    权重之和为 100（错误信息指明 ``indicators`` 字段和实际合计）；指标不重复且方向正确；
    等级线严格递减、不重复、最低一档为 0；“以乡镇为主”方案仅适用派驻机构且乡镇评价权重 ≥ 50。
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    name: str = Field(min_length=1)
    version: int = Field(ge=1)
    kind: SchemeKind = "standard"
    """``township_led``: 派驻机构 以乡镇为主. 以乡镇为主的派驻机构方案。"""
    unit_kinds: list[UnitKind] = Field(min_length=1)
    township_rating_weight: float = Field(default=0.0, ge=0, le=100)
    satisfaction_basic_factor: float = Field(default=DEFAULT_SATISFACTION_FACTOR, ge=0, le=1)
    min_cases: int = Field(default=5, ge=1)
    grade_bands: list[GradeBand] = Field(default_factory=lambda: list(DEFAULT_GRADE_BANDS))
    indicators: list[SchemeIndicator] = Field(min_length=1)
    description: str = ""
    population: Population = "all"
    """Which cases it scores (:mod:`services.metrics.populations`): ``whistled`` 吹哨报到,
    ``devolved`` 下放事项. 考核口径。"""
    by_township: bool = False
    """Score a unit once per township its cases are in (a department as each township that whistled
    it sees it); a township-led scheme always does. 按乡镇分别计分。"""

    @field_validator("unit_kinds")
    @classmethod
    def _unique_kinds(cls, value: list[UnitKind]) -> list[UnitKind]:
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate unit kinds: {value}")
        return value

    @field_validator("grade_bands", mode="before")
    @classmethod
    def _bands_from_mapping(cls, value: Any) -> Any:
        """Accept ``{A: 90, B: 75, …}`` as well as a list. 允许映射写法。"""
        if isinstance(value, Mapping):
            return [{"grade": g, "min_score": s} for g, s in value.items()]
        return value

    @field_validator("grade_bands")
    @classmethod
    def _bands_descending(cls, value: list[GradeBand]) -> list[GradeBand]:
        if not value:
            raise ValueError("at least one grade band is needed")
        grades = [b.grade for b in value]
        if len(set(grades)) != len(grades):
            raise ValueError(f"duplicate grades: {grades}")
        scores = [b.min_score for b in value]
        if any(a <= b for a, b in itertools.pairwise(scores)):
            raise ValueError(f"grade bands must be strictly descending by min_score, got {scores}")
        if scores[-1] != 0:
            raise ValueError(f"the lowest grade band must start at 0 so every score grades, got {scores[-1]}")
        return value

    @field_validator("indicators")
    @classmethod
    def _indicators(cls, value: list[SchemeIndicator], info: ValidationInfo) -> list[SchemeIndicator]:
        ids = [i.indicator for i in value]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"indicators: duplicate indicator(s) {duplicates}")
        weights = sum(i.weight for i in value)
        if "township_rating_weight" in info.data:  # absent if that field failed validation
            rating = float(info.data["township_rating_weight"])
            total = weights + rating
            if not math.isclose(total, 100.0, abs_tol=_WEIGHT_TOLERANCE):
                raise ValueError(
                    f"indicators: weights must sum to 100, got {total:g} "
                    f"(indicator weights {weights:g} + township_rating_weight {rating:g})"
                )
        return value

    @model_validator(mode="after")
    def _township_led(self) -> AssessmentScheme:
        if self.kind == "township_led":
            if self.unit_kinds != ["stationed_agency"]:
                raise ValueError(
                    f"township_led scheme applies to stationed_agency only, got unit_kinds {self.unit_kinds}"
                )
            if self.township_rating_weight < 50:
                raise ValueError(
                    "township_rating_weight: the township's rating must weigh at least 50 in a "
                    f"township_led scheme (以乡镇为主), got {self.township_rating_weight:g}"
                )
        elif self.township_rating_weight != 0:
            raise ValueError(
                "township_rating_weight: only a township_led scheme has a township rating, "
                f"got {self.township_rating_weight:g} with kind {self.kind}"
            )
        return self

    @model_validator(mode="after")
    def _agencies_township_led(self, info: ValidationInfo) -> AssessmentScheme:
        """A new version may not rank 派驻机构 outside a township-led scheme (stored ones are read as
        they are, and :attr:`ranked_kinds` leaves the agencies out of them)."""
        if (info.context or {}).get("new_version") and self.kind != "township_led":
            if "stationed_agency" in self.unit_kinds:
                raise ValueError(
                    "unit_kinds: 派驻机构 (stationed_agency) are assessed township-led only (工作考核以乡镇为主); "
                    "score them in a township_led scheme, not a second standard ranking"
                )
        return self

    @property
    def per_township(self) -> bool:
        """Scored per (unit, township). 按（单位，乡镇）计分。"""
        return self.kind == "township_led" or self.by_township

    @property
    def ranked_kinds(self) -> list[UnitKind]:
        """The unit kinds this scheme ranks: 派驻机构 only in a township-led scheme. 实际参与排名的单位类型。"""
        if self.kind == "township_led":
            return list(self.unit_kinds)
        return [k for k in self.unit_kinds if k != "stationed_agency"]

    @property
    def key(self) -> str:
        """``id@version``. 方案版本键。"""
        return f"{self.id}@{self.version}"

    def grade(self, score: float) -> str:
        """The grade of a score. 得分对应的等级。"""
        for band in self.grade_bands:
            if score >= band.min_score:
                return band.grade
        return self.grade_bands[-1].grade  # pragma: no cover - the last band starts at 0

    def headers(self) -> dict[str, str]:
        """Part name → Chinese header, in scheme order. 分项名 → 中文表头（方案顺序）。"""
        out: dict[str, str] = {}
        if self.kind == "township_led":
            out[TOWNSHIP_RATING] = "乡镇评价"
        for item in self.indicators:
            label = INDICATOR_LABELS[item.indicator]
            out[item.indicator] = f"1 − {label}" if item.counts_against else label
        return out


def load_scheme_file(path: Path | str) -> AssessmentScheme:
    """Load one scheme from a YAML file. 从 YAML 文件加载一个方案。"""
    p = Path(path)
    with p.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    if not isinstance(raw, dict):
        raise ValueError(f"{p}: a scheme file must hold a mapping")
    return AssessmentScheme.model_validate(raw)


def load_schemes(directory: Path | str) -> dict[str, AssessmentScheme]:
    """Load every ``*.yaml``/``*.yml`` scheme in a directory, keyed by scheme id. 加载目录下全部方案。

    When several files hold the same id, the highest version wins; the same
    id and version twice is an error naming both files.
    同一 id 有多个文件时取最高版本；id 与版本都相同则报错并指出两个文件。
    """
    base = Path(directory)
    if not base.is_dir():
        raise ValueError(f"scheme directory {base} does not exist")
    found: dict[str, tuple[AssessmentScheme, Path]] = {}
    files = sorted([*base.glob("*.yaml"), *base.glob("*.yml")])
    for path in files:
        scheme = load_scheme_file(path)
        previous = found.get(scheme.id)
        if previous is not None:
            if previous[0].version == scheme.version:
                raise ValueError(f"scheme {scheme.key} defined twice: {previous[1]} and {path}")
            if previous[0].version > scheme.version:
                continue
        found[scheme.id] = (scheme, path)
    return {sid: pair[0] for sid, pair in sorted(found.items())}


class IndicatorRow(BaseModel):
    """A unit's counts in one township for one period. 某单位在某乡镇某周期的计数。

    For a standard scheme a unit usually has one row (``township`` = its own
    township); for the township-led scheme an agency has one row per township
    it serves (see :func:`services.metrics.fact_counts.unit_counts`).
    一般单位一行；“以乡镇为主”方案中派驻机构在其服务的每个乡镇各一行。
    """

    model_config = ConfigDict(frozen=True)

    unit: str
    unit_kind: UnitKind
    township: str
    counts: dict[str, int]
    unit_name: str | None = None


class ScoreRow(BaseModel):
    """A scored row, explainable down to its parts. 评分结果行，可追溯到各分项。"""

    model_config = ConfigDict(frozen=True)

    scheme_id: str
    scheme_version: int
    unit: str
    unit_kind: UnitKind
    township: str
    unit_name: str | None = None
    cases: int
    """Dispatched cases (the population). 派遣案件数（统计口径）。"""
    status: RowStatus
    status_label: str
    rates: dict[str, float | None]
    """Every indicator's rate (not only the scheme's). 全部指标比率。"""
    parts: dict[str, float | None]
    """Points per scheme part (weight × value), ``None`` when missing. 各分项得分。"""
    township_rating: float | None = None
    rating_missing: bool = False
    missing: list[str] = Field(default_factory=list)
    score: float | None = None
    partial_score: float | None = None
    grade: str | None = None
    rank_in_township: int | None = None
    """Rank among the same unit kind in the same township. 同乡镇同类单位内排名。"""
    rank_in_kind: int | None = None
    """Rank among the same unit kind across townships. 全县同类单位内排名。"""


def _tie_key(row: ScoreRow, order: list[str]) -> tuple[Any, ...]:
    """Higher score first, then each part in scheme order, then unit id.

    得分高者优先；同分按方案分项顺序逐项比较，再按单位 id。
    """
    assert row.score is not None
    return (-row.score, *(-round(row.parts[p] or 0.0, 9) for p in order), row.unit, row.township)


def score_units(
    rows: Iterable[IndicatorRow],
    scheme: AssessmentScheme,
    ratings: Mapping[tuple[str, str], float] | None = None,
) -> list[ScoreRow]:
    """Score and rank units under a scheme. 按方案评分并排名。

    ``ratings`` maps ``(township, unit)`` to the township's rating of the
    agency (0–100), used by the township-led scheme only. Rows of unit kinds
    the scheme does not cover are left out, and so are 派驻机构 under a scheme that is
    not township-led (their one ranking is the township-led one, 以乡镇为主). Ranks are given per (township,
    unit kind) and per unit kind; ties go to the better value of the parts in
    the scheme's order (township rating first in a township-led scheme), then
    unit id. Rows come back ordered by unit kind, township, rank, unit.
    ``ratings`` 以（乡镇，单位）为键，仅用于“以乡镇为主”方案。方案未覆盖的单位类型不参与。
    同分时按方案分项顺序比较（以乡镇为主方案先比乡镇评价），再按单位 id。
    """
    ratings = ratings or {}
    for key, value in ratings.items():
        if not 0 <= value <= 100:
            raise ValueError(f"township rating {key} = {value} is outside 0..100")
    order = list(scheme.headers())
    scored: list[ScoreRow] = []
    seen: set[tuple[str, str]] = set()
    for row in rows:
        if row.unit_kind not in scheme.ranked_kinds:
            continue
        if (row.unit, row.township) in seen:
            raise ValueError(f"duplicate row for unit {row.unit} in township {row.township}")
        seen.add((row.unit, row.township))
        scored.append(_score_row(row, scheme, ratings))

    ranked: dict[tuple[str, str], dict[str, int]] = {}
    for field, group_of in (
        ("rank_in_township", lambda r: (r.unit_kind, r.township)),
        ("rank_in_kind", lambda r: (r.unit_kind,)),
    ):
        groups: dict[tuple[str, ...], list[ScoreRow]] = {}
        for r in scored:
            if r.status == "scored":
                groups.setdefault(group_of(r), []).append(r)
        for members in groups.values():
            members.sort(key=lambda r: _tie_key(r, order))
            for rank, r in enumerate(members, start=1):
                ranked.setdefault((r.unit, r.township), {})[field] = rank

    result = [r.model_copy(update=ranked.get((r.unit, r.township), {})) for r in scored]
    big = 10**9
    result.sort(key=lambda r: (r.unit_kind, r.township, r.rank_in_township or big, r.status, r.unit))
    return result


def _score_row(row: IndicatorRow, scheme: AssessmentScheme, ratings: Mapping[tuple[str, str], float]) -> ScoreRow:
    """Score one row (no rank yet). 对一行评分（尚未排名）。"""
    rates = rates_from_counts(row.counts, scheme.satisfaction_basic_factor)
    parts: dict[str, float | None] = {}
    missing: list[str] = []
    rating: float | None = None
    if scheme.kind == "township_led":
        rating = ratings.get((row.township, row.unit))
        if rating is None:
            parts[TOWNSHIP_RATING] = None
            missing.append(TOWNSHIP_RATING)
        else:
            parts[TOWNSHIP_RATING] = scheme.township_rating_weight * rating / 100.0
    for item in scheme.indicators:
        value = item.value(rates[item.indicator])
        if value is None:
            parts[item.indicator] = None
            missing.append(item.indicator)
        else:
            parts[item.indicator] = item.weight * value
    total = round(sum(p for p in parts.values() if p is not None), 2)
    cases = row.counts.get("dispatched", 0)

    status: RowStatus
    if cases < scheme.min_cases:
        status = "insufficient_data"
    elif missing:
        status = "incomplete"
    else:
        status = "scored"
    return ScoreRow(
        scheme_id=scheme.id,
        scheme_version=scheme.version,
        unit=row.unit,
        unit_kind=row.unit_kind,
        township=row.township,
        unit_name=row.unit_name,
        cases=cases,
        status=status,
        status_label=STATUS_LABELS[status],
        rates=rates,
        parts=parts,
        township_rating=rating,
        rating_missing=TOWNSHIP_RATING in missing,
        missing=missing,
        score=total if status == "scored" else None,
        partial_score=total if status == "incomplete" else None,
        grade=scheme.grade(total) if status == "scored" else None,
    )
