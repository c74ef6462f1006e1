"""The jurisdiction bundle's pydantic models 辖区数据包模型.

A county's whole jurisdiction — division tree with boundaries, units (承办单位),
matter catalogue (事项清单), devolution lists (下放清单), township functions,
source-code mappings and override rules — travels as one JSON document (the
exchange format of the team's domain notes, jurisdiction.md). These models give
its shape only; :mod:`shared.jurisdiction.validation` checks its meaning.
一个区县的完整辖区数据以一个 JSON 文档流转；本模块只描述结构，含义校验见 validation。
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.jurisdiction.limits import AppealType
from shared.vocabulary import DivisionLevel, Source, TimeBasis, UnitKind, Urgency

__all__ = [
    "Deadlines",
    "DevolutionEntry",
    "DevolutionMode",
    "DivisionCollection",
    "DivisionFeature",
    "DivisionProperties",
    "Geometry",
    "JurisdictionBundle",
    "Matter",
    "Rule",
    "RuleAction",
    "RuleConditions",
    "Unit",
]


class _Closed(BaseModel):
    """Base for bundle parts whose unknown keys are errors (typos must not pass silently).

    未知字段视为错误（避免拼写错误被静默忽略）。
    """

    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """Base for GeoJSON parts and the envelope: unknown keys are ignored. 未知字段忽略。"""

    model_config = ConfigDict(extra="ignore")


class DivisionProperties(_Open):
    """Properties of one division feature. 区划要素属性。"""

    code: str
    name: str
    level: DivisionLevel
    parent_code: str | None = None


class Geometry(_Open):
    """A GeoJSON Polygon or MultiPolygon in WGS-84. WGS-84 面或多面几何。"""

    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]


class DivisionFeature(_Open):
    """One division (county, township, village or grid). 一个区划要素。"""

    type: Literal["Feature"] = "Feature"
    properties: DivisionProperties
    geometry: Geometry | None = None


class DivisionCollection(_Open):
    """The division tree as a GeoJSON FeatureCollection. 区划要素集合。"""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[DivisionFeature] = Field(default_factory=list)


class Unit(_Closed):
    """A handling unit (承办单位).

    ``township_code`` for township offices and enforcement teams; ``department``
    (id of a ``county_department`` unit) for stationed agencies — a county
    department names itself; ``covers``: townships a stationed agency serves.
    镇内设机构、执法队填 ``township_code``；派驻机构填 ``department`` 与 ``covers``。
    """

    id: str
    name: str
    kind: UnitKind
    township_code: str | None = None
    department: str | None = None
    covers: list[str] | None = None


class WorkingDays(_Closed):
    """A deadline in working days 工作日时限 (e.g. 12345 一般件: 5 working days).

    It ends at the same clock time on the Nth working day after dispatch, or at that day's end
    when the dispatch came after hours or on a day off. 第 N 个工作日的同一时刻（下班后或休息日
    派遣则为该日下班时）。
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    working_days: int = Field(ge=1, le=365)


#: A deadline amount: hours (on the matter's clock) or working days. 时限：小时数或工作日数。
DeadlineAmount = float | WorkingDays


class Deadlines(_Closed):
    """Deadlines by urgency: hours (working hours when the basis is working time), or
    ``{"working_days": N}``. 按紧急程度的办理时限（小时；或工作日数）。
    """

    normal: DeadlineAmount
    urgent: DeadlineAmount
    critical: DeadlineAmount

    def for_urgency(self, urgency: Urgency) -> DeadlineAmount:
        """The deadline for ``urgency``. 指定紧急程度的时限。"""
        value: DeadlineAmount = getattr(self, urgency)
        return value


class Matter(_Closed):
    """A matter of the catalogue (事项). 事项清单中的一项。"""

    code: str
    name: str
    department: str
    township_function: str
    deadlines: Deadlines
    time_basis: TimeBasis
    #: Bounded group label (市容环境, 违法建设 …) used as a metrics label. 事项分组（用作监控标签）。
    group: str | None = None
    #: Escalate automatically once overdue. 超期自动升级。
    auto_escalate_when_overdue: bool = False
    #: 监管时限: working days after an approval by which the first check is due (事中事后监管), unless
    #: the approval says otherwise; also a 责令整改 follow-up check's. 审批后首次检查的工作日时限。
    supervise_within_days: int | None = Field(None, ge=1, le=365)


class AlarmTypeSettings(_Closed):
    """How the platform treats one alarm type (告警类型设置) of the monitoring system.

    ``confidence_threshold``: below it a video-AI alarm goes to triage for a human look (复核);
    ``burst_window_minutes``: alarms of the same device and type within it of an open case join
    that case (告警合并). 置信度低于阈值转人工复核；窗口内同设备同类型告警并入未结案件。
    """

    confidence_threshold: float = Field(0.6, ge=0, le=1)
    burst_window_minutes: int = Field(30, ge=1, le=24 * 60)


class RuleConditions(_Closed):
    """Conditions of an override rule: every listed one must hold (any value of its list).

    规则条件：所列条件须全部满足（列表内任一值即可）；空条件匹配一切。
    """

    matter: list[str] | None = None
    township: list[str] | None = None
    grid: list[str] | None = None
    source: list[Source] | None = None
    appeal_type: list[AppealType] | None = None
    urgency: list[Urgency] | None = None
    keywords: list[str] | None = None


class RuleAction(_Closed):
    """What a matching rule decides. 规则动作：主办单位、协办单位、时限覆盖。"""

    unit: str | None = None
    cohandlers: list[str] | None = None
    deadline_hours: float | None = None


class Rule(_Closed):
    """An override rule (派遣规则); lower ``priority`` first. 优先级数字小者先匹配。"""

    id: str
    priority: int
    description: str = ""
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    action: RuleAction = Field(default_factory=RuleAction)


#: How a power reaches the township (the team's domain notes, "Devolution that changes"):
#: 下放 (the township is the legal enforcer), 委托 (entrusted: it acts in the department's name),
#: 协助 (it only assists). 下放 / 委托 / 协助。
DevolutionMode = Literal["devolved", "entrusted", "assist"]


class DevolutionEntry(_Closed):
    """A dated devolution entry 下放清单条目（动态调整）.

    In force on the Asia/Shanghai days ``effective_from`` ≤ day < ``effective_to``
    (``effective_to`` is the first day it no longer applies, the day the power is returned 收回;
    ``None``: open-ended). ``effective_from=None``: in force from the start of the record (the
    import of an undated ``devolution`` list). ``document``: the decision's 文号.
    生效区间按上海日期 [effective_from, effective_to)；effective_to 为收回之日（不含）；document 为文号。
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    township: str
    matter: str
    mode: DevolutionMode = "devolved"
    effective_from: date | None = None
    effective_to: date | None = None
    document: str | None = None


class JurisdictionBundle(_Open):
    """A county's whole jurisdiction as one document (see jurisdiction.md). 辖区数据包。

    ``version`` is informative and ignored on import (the grid service numbers
    versions itself). ``version`` 仅供参考，导入时忽略。
    """

    version: int | None = None
    county_code: str
    name: str
    divisions: DivisionCollection
    units: list[Unit] = Field(default_factory=list)
    matters: list[Matter] = Field(default_factory=list)
    devolution: dict[str, list[str]] = Field(default_factory=dict)
    #: The date the undated ``devolution`` lists apply from (``None``: from the start of the record).
    #: 未注明日期的下放清单的生效日期。
    effective_date: date | None = None
    #: Dated devolution entries (history, never rewritten). 带日期的下放条目（历史，不改写）。
    devolution_entries: list[DevolutionEntry] = Field(default_factory=list)
    township_functions: dict[str, dict[str, str]] = Field(default_factory=dict)
    source_mappings: dict[Source, dict[str, str]] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    #: Per alarm type (a key of ``source_mappings.alarm``); types not listed take the defaults.
    #: 告警类型设置（键须在 source_mappings.alarm 中）；未列出的类型取默认值。
    alarm_types: dict[str, AlarmTypeSettings] = Field(default_factory=dict)
