"""The bundle's fixed formats and limits 数据包格式与上限: code lengths, parent levels, ranges.

Pure constants; validation and dispatch read them. 纯常量，供校验与派遣使用。
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, get_args

from shared.vocabulary import DivisionLevel, Source, Urgency

__all__ = [
    "APPEAL_TYPES",
    "CITYOPS_KEY",
    "CODE_LENGTHS",
    "DIVISION_LEVELS",
    "LEVEL_RANK",
    "MAX_DEADLINE_HOURS",
    "MAX_GROUP_LENGTH",
    "MAX_MATTER_GROUPS",
    "MAX_RULE_PRIORITY",
    "OVERLAP_TOLERANCE_DEG2",
    "PARENT_LEVEL",
    "SOURCES",
    "URGENCIES",
    "AppealType",
]

#: Appeal types of a 12345 work order 诉求类型: 咨询、求助、投诉、举报、建议、表扬.
AppealType = Literal["consult", "help", "complaint", "report", "suggestion", "praise"]

DIVISION_LEVELS: tuple[DivisionLevel, ...] = get_args(DivisionLevel)
URGENCIES: tuple[Urgency, ...] = get_args(Urgency)
SOURCES: tuple[Source, ...] = get_args(Source)
APPEAL_TYPES: tuple[AppealType, ...] = get_args(AppealType)

#: The level a division's parent must have. 各层级的上级层级。
PARENT_LEVEL: Mapping[DivisionLevel, DivisionLevel] = MappingProxyType(
    {"township": "county", "village": "township", "grid": "village"}
)
#: Allowed code lengths per level (统计用区划代码 ``PPCCDD TTT VVV`` + grid suffix of 3–4 digits).
#: 各层级编码位数：县 6、镇 9、村 12、网格在村编码后加 3–4 位。
CODE_LENGTHS: Mapping[DivisionLevel, tuple[int, ...]] = MappingProxyType(
    {"county": (6,), "township": (9,), "village": (12,), "grid": (15, 16)}
)
#: Finer levels rank lower (grid 0 … county 3). 层级由细到粗的序号。
LEVEL_RANK: Mapping[str, int] = MappingProxyType({"grid": 0, "village": 1, "township": 2, "county": 3})
#: Deadlines and rule deadline overrides must be in (0, 1 year]. 时限范围（小时）。
MAX_DEADLINE_HOURS = 24 * 365
#: Two grids of one village overlap when their intersection is larger than this (deg²; ≈ 1 m²).
#: 同村网格交叠面积阈值（平方度，约 1 平方米）。
OVERLAP_TOLERANCE_DEG2 = 1e-10
#: Rule priorities are integers in [0, MAX_RULE_PRIORITY]. 规则优先级范围。
MAX_RULE_PRIORITY = 1_000_000
#: Matter groups become Prometheus label values: keep them few and short. 事项分组数量与长度上限。
MAX_MATTER_GROUPS = 32
MAX_GROUP_LENGTH = 16
#: A 数字城管 source-mapping key: ``<major>-<minor>``, 2 digits, '-', 2 or 3 digits. 数字城管映射键格式。
CITYOPS_KEY: Final = re.compile(r"\d{2}-\d{2,3}")
