"""The platform's shared vocabulary 共用词表: the closed sets every service names the same way.

One home for each word list, so intake's schemas, the event contract, the
jurisdiction bundle, dispatch and metrics cannot drift apart. Adding a source or
a unit kind starts here (and in the event contract's version, if it changes the
wire).
"""

from __future__ import annotations

from typing import Final, Literal

#: Where an incident came from 来源: 12345 热线工单, 数字城管案卷, 网格员上报, 审批办件 (双推送), 监测告警.
Source = Literal["12345", "cityops", "gridworker", "approval", "alarm"]

#: What a case is 案件类型: an incident to handle 事件, or a supervision task after an approval 监管任务.
CaseKind = Literal["incident", "inspection"]

#: 审批结果: 准予, 附条件准予 (承诺制), 不予许可, 撤销.
ApprovalResult = Literal["approved", "approved_with_conditions", "denied", "revoked"]

#: 监测设备类型: video AI, water level, noise, smoke, manhole cover, air, other.
DeviceKind = Literal["video", "water_level", "noise", "smoke", "manhole", "air", "other"]

#: 告警级别.
AlarmLevel = Literal["info", "warning", "alarm", "critical"]

#: Why a case is marked invalid 不予立案/作废原因: 重复, 非管辖, 不属实, 信息不全, 误报.
InvalidReason = Literal["duplicate_elsewhere", "out_of_scope", "not_a_problem", "insufficient", "false_alarm"]

#: A supervision task's inspection result 检查结果: 合格, 责令整改, 立案查处.
InspectionResult = Literal["compliant", "rectify", "case_opened"]

#: How urgent a report is 紧急程度: 一般件 / 紧急件 / 特急件.
Urgency = Literal["normal", "urgent", "critical"]

#: The clock a deadline runs on 计时口径: 工作时 / 自然时.
TimeBasis = Literal["working", "natural"]

#: Handling-unit kinds 承办单位类型: 镇内设机构, 综合行政执法队, 派驻机构, 县级部门.
UnitKind = Literal["township_office", "enforcement_team", "stationed_agency", "county_department"]

#: Unit kinds that belong to a township (township-led, 乡镇统筹).
TOWNSHIP_UNIT_KINDS: Final[frozenset[str]] = frozenset({"township_office", "enforcement_team"})

#: Levels of the division tree 区划层级: 区县 → 乡镇/街道 → 村/社区 → 网格.
DivisionLevel = Literal["county", "township", "village", "grid"]

#: Coordinate reference systems producers send 坐标系.
Crs = Literal["wgs84", "gcj02", "bd09", "cgcs2000"]

#: Chinese labels 中文名称.
URGENCY_LABELS: Final[dict[str, str]] = {"normal": "一般件", "urgent": "紧急件", "critical": "特急件"}
TIME_BASIS_LABELS: Final[dict[str, str]] = {"working": "工作时", "natural": "自然时"}
INVALID_REASON_LABELS: Final[dict[str, str]] = {
    "duplicate_elsewhere": "重复",
    "out_of_scope": "非管辖",
    "not_a_problem": "不属实",
    "insufficient": "信息不全",
    "false_alarm": "误报",
}
INSPECTION_RESULT_LABELS: Final[dict[str, str]] = {
    "compliant": "合格",
    "rectify": "责令整改",
    "case_opened": "立案查处",
}
