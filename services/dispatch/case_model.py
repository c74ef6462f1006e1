"""The case's value types (案件值类型) for the lifecycle rules: states, actions, roles, the actor,
the case snapshot, the timeline entry and the outcome of a transition.

Pure data, no rules: the rules are in :mod:`services.dispatch.lifecycle` (the transition table,
:func:`~services.dispatch.lifecycle.apply`, scope) and :mod:`services.dispatch.transition_rules`;
the request bodies of the actions are in :mod:`services.dispatch.action_bodies`.
案件状态、操作、角色、操作人、案件快照、时间线记录与流转结果；规则在 lifecycle 模块中。
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shared.vocabulary import Source

if TYPE_CHECKING:  # the bodies refer to Satisfaction; an Applied only carries one
    from services.dispatch.action_bodies import ActionBody

__all__ = [
    "CASE_REPORTED",
    "HOTLINE_SOURCE",
    "OPEN_STATES",
    "RUNNING_STATES",
    "STATE_LABELS",
    "Action",
    "Actor",
    "Applied",
    "CaseSnapshot",
    "CaseState",
    "Escalation",
    "ExtensionRequest",
    "RefusalKind",
    "Refused",
    "Rejection",
    "Role",
    "Satisfaction",
    "TimelineEntry",
    "TransitionResult",
]

#: Source code of 12345 hotline cases (12345 热线); only they get a 回访 callback.
HOTLINE_SOURCE: Final[Source] = "12345"
#: Event type of the first timeline entry (the case as created by intake, 立案).
CASE_REPORTED = "case.reported"


# --------------------------------------------------------------------------- vocabularies


class CaseState(StrEnum):
    """Case state (案件状态)."""

    REPORTED = "reported"  # 上报 / 立案
    DISPATCHED = "dispatched"  # 已派遣
    ACCEPTED = "accepted"  # 已签收
    RESOLVED = "resolved"  # 已办结 (处置反馈)
    CLOSED = "closed"  # 已结案
    REJECTED = "rejected"  # 已退单
    TRIAGE = "triage"  # 待人工分拨
    REOPENED = "reopened"  # 返工 / 重办


class Action(StrEnum):
    """What an actor asks to do to a case (操作)."""

    DISPATCH = "dispatch"  # 派遣 (system / dispatcher)
    TRIAGE = "triage"  # 转人工分拨
    ASSIGN = "assign"  # 手动派遣
    ACCEPT = "accept"  # 签收
    REJECT = "reject"  # 退单
    REQUEST_EXTENSION = "request_extension"  # 延期申请
    DECIDE_EXTENSION = "decide_extension"  # 延期审批
    RULE_REJECTION = "rule_rejection"  # 判定退单
    REASSIGN = "reassign"  # 改派
    RESOLVE = "resolve"  # 办结
    VERIFY = "verify"  # 核查
    CLOSE = "close"  # 结案
    CALLBACK = "callback"  # 回访
    REOPEN = "reopen"  # 重办
    SUPERVISE = "supervise"  # 督办
    ESCALATE = "escalate"  # 吹哨
    REPORT_IN = "report_in"  # 报到
    ADD_COHANDLER = "add_cohandler"  # 增加协办单位
    MARK_OVERDUE = "mark_overdue"  # 超期标记 (system sweep)
    SELF_HANDLE = "self_handle"  # 网格员自办
    RECOMPUTE_DEADLINE = "recompute_deadline"  # 期限重算 (system: the year's holiday notice was loaded)
    # since the approval and alarm sources
    MARK_INVALID = "mark_invalid"  # 不予立案 / 作废 (dispatcher; triage or not yet accepted)
    ADD_OCCURRENCE = "add_occurrence"  # 告警合并: alarms of a burst join the open case (system)
    AUTO_RECOVER = "auto_recover"  # 自动恢复: the alarm cleared before the case was accepted (system)
    MARK_FALSE_ALARM = "mark_false_alarm"  # 误报 (dispatcher; alarm cases)
    RECORD_INSPECTION = "record_inspection"  # 检查结果 of a supervision task 监管任务 (unit)
    REVOKE = "revoke"  # 撤销: the approval was revoked, its open supervision task closes (system)
    ASSIGN_MEMBER = "assign_member"  # 派单到人 (a member or a team of the handling unit)


class Role(StrEnum):
    """Who is acting (角色)."""

    UNIT = "unit"  # 处置单位 (bound to one unit)
    DISPATCHER = "dispatcher"  # 派遣员 / 指挥中心
    TOWNSHIP_ADMIN = "township_admin"  # 乡镇管理员
    HOTLINE = "hotline"  # 12345 系统 (posts 回访 results)
    ADMIN = "admin"  # 管理员: anything a dispatcher or township admin may do
    SYSTEM = "system"  # 系统内部 (auto dispatch, overdue sweep, self-handled reports)
    MEMBER = "member"  # 队员 (a person of a unit; acts on the cases assigned to them; id = member id)


class Satisfaction(StrEnum):
    """Callback satisfaction (回访满意度)."""

    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    UNSATISFIED = "unsatisfied"  # 不满意


STATE_LABELS: Mapping[CaseState, str] = MappingProxyType(
    {
        CaseState.REPORTED: "已上报",
        CaseState.DISPATCHED: "已派遣",
        CaseState.ACCEPTED: "已签收",
        CaseState.RESOLVED: "已办结",
        CaseState.CLOSED: "已结案",
        CaseState.REJECTED: "已退单",
        CaseState.TRIAGE: "待人工分拨",
        CaseState.REOPENED: "返工/重办",
    }
)

#: Open cases (未结案): everything but ``closed``.
OPEN_STATES: frozenset[CaseState] = frozenset(CaseState) - {CaseState.CLOSED}
#: States in which the 办结 deadline runs (超期 can be flagged): open and not yet resolved. 办结期限计时中的状态。
RUNNING_STATES: frozenset[CaseState] = OPEN_STATES - {CaseState.RESOLVED}

RefusalKind: TypeAlias = Literal["conflict", "not_allowed", "forbidden", "invalid"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- actor and snapshot


@dataclass(frozen=True)
class Actor:
    """Who acts (操作人): role, bound unit (for ``unit``), bound township (``*`` = whole county)."""

    role: Role
    unit: str | None = None
    township: str | None = None
    id: str | None = None


class Rejection(BaseModel):
    """One 退单 by a unit, and the dispatcher's ruling on it (判定退单: valid 有效 / invalid 无效)."""

    model_config = _FROZEN

    unit: str
    reason: str
    at: AwareDatetime
    valid: bool | None = None  # None = not ruled yet


class ExtensionRequest(BaseModel):
    """A pending 延期申请."""

    model_config = _FROZEN

    new_deadline: AwareDatetime
    reason: str
    requested_at: AwareDatetime


class Escalation(BaseModel):
    """The current 吹哨: the county department called in, and its 报到 (acknowledgement)."""

    model_config = _FROZEN

    department: str
    reason: str
    escalated_at: AwareDatetime
    reported_in_at: AwareDatetime | None = None

    @property
    def pending(self) -> bool:
        """True while the department has not reported in (待报到)."""
        return self.reported_in_at is None


class CaseSnapshot(BaseModel):
    """Everything the lifecycle rules need to know about a case (案件快照). Immutable.

    ``version`` starts at 1 when the case is created (立案) and grows by one per transition.
    """

    model_config = _FROZEN

    id: str
    township: str  # 乡镇 (行政区划代码)
    source: str  # 来源: a Source of shared.vocabulary ("12345" | "cityops" | "gridworker")
    reported_at: AwareDatetime  # 上报时间
    state: CaseState = CaseState.REPORTED
    version: int = 1
    matter: str | None = None  # 事项
    primary_unit: str | None = None  # 主办单位
    cohandlers: tuple[str, ...] = ()  # 协办单位
    deadline: AwareDatetime | None = None  # 办结期限 in force (after approved extensions)
    overdue: bool = False  # 超期 flag
    reject_window_ends_at: AwareDatetime | None = None  # 退单时限 (computed elsewhere)
    rejections: tuple[Rejection, ...] = ()  # 退单记录
    rework_count: int = 0  # 返工次数 (核查不通过)
    reopen_count: int = 0  # 重办次数 (回访不满意后)
    extension_pending: ExtensionRequest | None = None  # 待审批的延期申请
    extension_count: int = 0  # 已批准延期次数
    verification_passed: bool | None = None  # last 核查 result since the last 办结
    supervise_count: int = 0  # 督办次数
    escalation: Escalation | None = None  # current 吹哨
    escalation_count: int = 0  # 吹哨次数
    satisfaction: Satisfaction | None = None  # 回访满意度 of the current closure
    solved: bool | None = None  # 回访: 是否解决
    callback_count: int = 0  # 回访次数
    self_handled: bool = False  # 自办
    handler: str | None = None  # 自办网格员
    last_transition_at: AwareDatetime | None = None  # time of the last transition
    # since the approval and alarm sources (defaults: a case stored before them reads the same)
    kind: Literal["incident", "inspection"] = "incident"  # 事件 / 监管任务
    occurrences: int = 1  # 告警次数 (alarm cases: this alarm and those of its burst)
    last_raised_at: AwareDatetime | None = None  # latest occurrence's raised_at (alarm cases)
    invalid_reason: str | None = None  # 不予立案/作废 reason
    inspection_result: str | None = None  # 检查结果: compliant / rectify / case_opened
    enforcement_case_no: str | None = None  # 执法案件编号 (立案查处)
    follow_up_case: str | None = None  # 整改复查 task created by a rectify result
    close_reason: str | None = None  # 自动恢复 / 撤销 when the system closed it
    false_alarm: bool = False  # 误报 (alarm cases)
    assignee: str | None = None  # 派单到人: the member or team the handling unit sent
    assignee_kind: Literal["member", "team"] | None = None
    assignees: tuple[str, ...] = ()  # the members who hold the task (the member, or the team's members)

    @property
    def rejected_by(self) -> tuple[str, ...]:
        """Units that rejected the case (退单单位), in order, each once."""
        return tuple(dict.fromkeys(r.unit for r in self.rejections))

    @property
    def rejection_count(self) -> int:
        """Number of 退单."""
        return len(self.rejections)

    @property
    def is_open(self) -> bool:
        """Not yet 结案."""
        return self.state in OPEN_STATES

    @property
    def escalation_department(self) -> str | None:
        """County department of the current 吹哨, if any."""
        return self.escalation.department if self.escalation else None

    @property
    def previous_at(self) -> datetime:
        """Time of the previous transition (or of the report): no transition may be earlier."""
        return self.last_transition_at or self.reported_at


# --------------------------------------------------------------------------- results and timeline


class TimelineEntry(BaseModel):
    """One recorded transition (案件时间线): who, when, what was asked, what changed.

    ``changes`` maps snapshot fields to their new JSON values (the first entry,
    ``case.reported``, holds the whole snapshot), so :func:`~services.dispatch.lifecycle.replay` can rebuild the case.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: str
    version: int  # case version after this entry
    event_type: str
    action: Action | None  # None only for the creation entry
    actor: Actor
    at: AwareDatetime
    body: dict[str, Any] = {}
    changes: dict[str, Any]


@dataclass(frozen=True)
class Refused:
    """The transition was refused (拒绝): why, and where the case stands."""

    kind: RefusalKind
    reason: str
    current_state: CaseState
    current_version: int


@dataclass(frozen=True)
class Applied:
    """The transition happened: the new snapshot, the event to publish and what changed."""

    new_case: CaseSnapshot
    event_type: str
    changes: dict[str, Any]
    action: Action
    body: ActionBody
    actor: Actor
    at: datetime

    def to_entry(self) -> TimelineEntry:
        """The timeline entry (时间线记录) to store with the new version."""
        return TimelineEntry(
            case_id=self.new_case.id,
            version=self.new_case.version,
            event_type=self.event_type,
            action=self.action,
            actor=self.actor,
            at=self.at,
            body=self.body.model_dump(mode="json"),
            changes=self.changes,
        )


TransitionResult: TypeAlias = Applied | Refused
