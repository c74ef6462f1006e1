"""Indicator registry and formulas. 考核指标登记表与计算公式。

One registry, :data:`INDICATORS`, drives everything: the Python formulas here,
the SQL aggregation later (each indicator names its numerator and denominator
*count columns*), and the Chinese export headers (:data:`INDICATOR_LABELS`).
同一份登记表同时驱动本模块的计算、日后的 SQL 汇总（分子/分母均为计数列名）和导出表头。

Per-unit count columns 单位计数列 (see :data:`COUNT_COLUMNS`): each case in
the unit's population contributes 0 or 1 to each column
(:func:`services.metrics.fact_counts.fact_counts`), so a unit's counts are plain sums.
每个案件对每一计数列贡献 0 或 1，单位计数即简单求和。

A rate whose denominator is 0 is ``None`` — never 0, never 1.
分母为 0 时比率为 ``None``（既不是 0 也不是 1）。
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "COUNT_COLUMNS",
    "COUNT_LABELS",
    "DEFAULT_SATISFACTION_FACTOR",
    "INDICATORS",
    "INDICATOR_IDS",
    "INDICATOR_LABELS",
    "IndicatorDef",
    "empty_counts",
    "rates_from_counts",
]

DEFAULT_SATISFACTION_FACTOR: Final = 0.9
"""Weight of 基本满意 in 满意率. 满意率中“基本满意”的折算系数。"""

COUNT_COLUMNS: Final[tuple[str, ...]] = (
    "dispatched",
    "accepted",
    "accepted_in_time",
    "resolved",
    "resolved_on_time",
    "overdue",
    "reworked",
    "rejected",
    "extended",
    "closed",
    "closed_on_time",
    "responded_in_time",
    "callbacks_valid",
    "solved",
    "satisfied",
    "basically_satisfied",
    "received",
    "hand_dispatched",
    "accurately_dispatched",
)
"""Per-unit count columns, in export order. 单位计数列（按导出顺序）。"""

COUNT_LABELS: Final[Mapping[str, str]] = {
    "dispatched": "派遣数",
    "accepted": "签收数",
    "accepted_in_time": "按时签收数",
    "resolved": "办结数",
    "resolved_on_time": "按期办结数",
    "overdue": "超期数",
    "reworked": "返工案件数",
    "rejected": "退单数",
    "extended": "延期案件数",
    "closed": "结案数",
    "closed_on_time": "按期结案数",
    "responded_in_time": "按时响应数",
    "callbacks_valid": "有效回访数",
    "solved": "已解决数",
    "satisfied": "满意数",
    "basically_satisfied": "基本满意数",
    "received": "收案数（含退回）",
    "hand_dispatched": "人工派遣数",
    "accurately_dispatched": "准确派遣数",
}
"""Chinese labels of the count columns. 计数列中文名。"""


@dataclass(frozen=True, slots=True)
class IndicatorDef:
    """One indicator: a ratio of count columns. 一个指标：计数列之比。

    ``value = (numerator + factor × partial_numerator) / denominator`` where
    ``partial_numerator`` is only used by 满意率 (基本满意 weighted by the
    satisfaction factor). ``lower_is_better`` marks indicators that count
    against the unit (超期率、返工率 …); a scheme enters them as ``1 − rate``.
    仅满意率使用 ``partial_numerator``（基本满意按系数折算）；
    ``lower_is_better`` 为越低越好的指标，考核方案中以 ``1 − 比率`` 计分。
    """

    id: str
    name_zh: str
    numerator: str
    denominator: str
    lower_is_better: bool = False
    partial_numerator: str | None = None
    description: str = ""

    def compute(
        self, counts: Mapping[str, int], satisfaction_factor: float = DEFAULT_SATISFACTION_FACTOR
    ) -> float | None:
        """The rate in 0..1, or ``None`` if the denominator is 0. 计算比率（0..1），分母为 0 返回 None。"""
        denominator = counts.get(self.denominator, 0)
        if denominator <= 0:
            return None
        numerator: float = counts.get(self.numerator, 0)
        if self.partial_numerator is not None:
            numerator += satisfaction_factor * counts.get(self.partial_numerator, 0)
        return numerator / denominator


def _defs(*defs: IndicatorDef) -> dict[str, IndicatorDef]:
    return {d.id: d for d in defs}


INDICATORS: Final[Mapping[str, IndicatorDef]] = _defs(
    IndicatorDef("acceptance_rate", "签收率", "accepted", "dispatched", description="签收 / 派遣"),
    IndicatorDef(
        "timely_acceptance_rate",
        "按时签收率",
        "accepted_in_time",
        "dispatched",
        description="签收时限内签收 / 派遣",
    ),
    IndicatorDef("resolution_rate", "办结率（处置率）", "resolved", "dispatched", description="办结 / 派遣"),
    IndicatorDef(
        "ontime_resolution_rate",
        "按期办结率（按期处置率）",
        "resolved_on_time",
        "dispatched",
        description="在生效期限（含批准延期）内办结 / 派遣",
    ),
    IndicatorDef(
        "overdue_rate",
        "超期率",
        "overdue",
        "dispatched",
        lower_is_better=True,
        description="超期办结或逾期未办结 / 派遣",
    ),
    IndicatorDef(
        "rework_rate",
        "返工率",
        "reworked",
        "resolved",
        lower_is_better=True,
        description="至少返工一次的案件 / 办结",
    ),
    IndicatorDef(
        "rejection_rate",
        "退单率",
        "rejected",
        "received",
        lower_is_better=True,
        description="本单位退单且未被判定为有效 / 派给本单位的案件（含本单位退回的）",
    ),
    IndicatorDef(
        "extension_rate",
        "延期率",
        "extended",
        "dispatched",
        lower_is_better=True,
        description="获批延期的案件 / 派遣",
    ),
    IndicatorDef("closure_rate", "结案率", "closed", "dispatched", description="结案 / 派遣"),
    IndicatorDef(
        "ontime_closure_rate",
        "按期结案率",
        "closed_on_time",
        "dispatched",
        description="在生效期限内结案 / 派遣",
    ),
    IndicatorDef(
        "response_rate",
        "响应率",
        "responded_in_time",
        "dispatched",
        description="时限内首次响应（签收）/ 派遣",
    ),
    IndicatorDef("solved_rate", "解决率", "solved", "callbacks_valid", description="回访“已解决” / 有效回访"),
    IndicatorDef(
        "satisfaction_rate",
        "满意率",
        "satisfied",
        "callbacks_valid",
        partial_numerator="basically_satisfied",
        description="（满意 + 系数 × 基本满意）/ 有效回访",
    ),
    IndicatorDef(
        "report_in_rate",
        "按时报到率",
        "accepted_in_time",
        "dispatched",
        description="吹哨案件：报到时限内报到 / 吹哨至本部门的案件（县级部门）",
    ),
    IndicatorDef(
        "accurate_dispatch_rate",
        "准确派遣率",
        "accurately_dispatched",
        "hand_dispatched",
        description="派遣员：人工派遣后未被有效退单、也未被改派的 / 人工派遣（按派遣员）",
    ),
)
"""The indicator registry, id → definition. 指标登记表：id → 定义。"""

INDICATOR_IDS: Final[tuple[str, ...]] = tuple(INDICATORS)
"""Indicator ids in registry order. 指标 id（登记顺序）。"""

INDICATOR_LABELS: Final[Mapping[str, str]] = {i: d.name_zh for i, d in INDICATORS.items()}
"""Indicator id → Chinese name, used for export headers. 指标 id → 中文名（导出表头）。"""


def _check_registry() -> None:
    for d in INDICATORS.values():
        for column in (d.numerator, d.denominator, d.partial_numerator):
            if column is not None and column not in COUNT_COLUMNS:  # pragma: no cover - import-time guard
                raise RuntimeError(f"indicator {d.id}: unknown count column {column!r}")


_check_registry()


def empty_counts() -> dict[str, int]:
    """All count columns at 0. 全部计数列置 0。"""
    return dict.fromkeys(COUNT_COLUMNS, 0)


def rates_from_counts(
    counts: Mapping[str, int], satisfaction_factor: float = DEFAULT_SATISFACTION_FACTOR
) -> dict[str, float | None]:
    """Every indicator from a unit's counts. 由单位计数计算全部指标。

    Missing count columns are read as 0; a denominator of 0 gives ``None``.
    缺少的计数列按 0 处理；分母为 0 时该指标为 ``None``。

    >>> rates_from_counts({"dispatched": 8, "resolved": 7})["resolution_rate"]
    0.875
    >>> rates_from_counts({})["satisfaction_rate"] is None
    True
    """
    if not 0.0 <= satisfaction_factor <= 1.0:
        raise ValueError(f"satisfaction_factor must be within 0..1, got {satisfaction_factor}")
    unknown = set(counts) - set(COUNT_COLUMNS)
    if unknown:
        raise ValueError(f"unknown count columns: {sorted(unknown)}")
    return {i: d.compute(counts, satisfaction_factor) for i, d in INDICATORS.items()}
