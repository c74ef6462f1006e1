"""Request bodies of the case actions (操作请求体): one pydantic model per
:class:`~services.dispatch.case_model.Action`, all derived from :class:`ActionBody`
(optimistic-concurrency version, optional historical time).

Which body an action takes is said by the transition table
(:func:`services.dispatch.lifecycle.body_model`). Pure data: no rules, no I/O.
各操作的请求体模型；操作与请求体的对应见流转规则表。
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, ConfigDict, StringConstraints

from services.dispatch.case_model import Satisfaction
from shared.inputs import NulFreeModel

__all__ = [
    "AcceptBody",
    "ActionBody",
    "AddCohandlerBody",
    "AssignBody",
    "AssignMemberBody",
    "CallbackBody",
    "CloseBody",
    "DecideExtensionBody",
    "DispatchBody",
    "EscalateBody",
    "MarkOverdueBody",
    "Note",
    "ReassignBody",
    "RecomputeDeadlineBody",
    "RejectBody",
    "ReopenBody",
    "ReportInBody",
    "RequestExtensionBody",
    "ResolveBody",
    "RuleRejectionBody",
    "SelfHandleBody",
    "SuperviseBody",
    "Text",
    "TriageBody",
    "UnitId",
    "VerifyBody",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: Free text that must say something (reason 原因, result 结果): stripped, non-empty.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
#: Optional note (备注).
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
#: Unit / department identifier (单位编码).
UnitId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class ActionBody(NulFreeModel):
    """Common body (请求体): optimistic-concurrency version and optional historical time."""

    model_config = _FROZEN

    expected_version: int
    occurred_at: AwareDatetime | None = None  # history import (历史导入): when it really happened


class DispatchBody(ActionBody):
    """派遣 (system / dispatcher): initial assignment, or re-dispatch after a 退单."""

    unit: UnitId
    deadline: AwareDatetime
    reject_window_ends_at: AwareDatetime | None = None


class TriageBody(ActionBody):
    """转人工分拨: unlocated, uncategorised or rejected too often."""

    reason: Text


class AssignBody(ActionBody):
    """手动派遣 from triage: a recorded manual decision."""

    unit: UnitId
    reason: Text
    matter: str | None = None
    deadline: AwareDatetime | None = None
    reject_window_ends_at: AwareDatetime | None = None


class AssignMemberBody(ActionBody):
    """派单到人: the member or team of the handling unit who goes, and the members holding the task
    (filled by the service from the unit's registry 由服务按力量登记补全)."""

    assignee: UnitId
    assignee_kind: Literal["member", "team"]
    members: tuple[UnitId, ...]
    note: Note = ""


class AcceptBody(ActionBody):
    """签收."""


class RejectBody(ActionBody):
    """退单: the unit says the case is not theirs."""

    reason: Text


class RequestExtensionBody(ActionBody):
    """延期申请."""

    new_deadline: AwareDatetime
    reason: Text


class DecideExtensionBody(ActionBody):
    """延期审批."""

    approved: bool
    note: Note = ""


class RuleRejectionBody(ActionBody):
    """判定退单: was the latest unruled 退单 (of ``unit``, if given) valid?"""

    valid: bool
    note: Note = ""
    unit: UnitId | None = None


class ReassignBody(ActionBody):
    """改派."""

    unit: UnitId
    reason: Text
    deadline: AwareDatetime | None = None
    reject_window_ends_at: AwareDatetime | None = None


class ResolveBody(ActionBody):
    """办结 (处置反馈): result text and photo references."""

    result: Text
    photos: tuple[str, ...] = ()


class VerifyBody(ActionBody):
    """核查: passed → 结案; failed → 返工."""

    passed: bool
    note: Note = ""


class CloseBody(ActionBody):
    """结案."""

    note: Note = ""


class CallbackBody(ActionBody):
    """回访 result from the 12345 system."""

    satisfaction: Satisfaction
    solved: bool
    note: Note = ""


class ReopenBody(ActionBody):
    """重办 after an unsatisfied 回访; optionally with a new deadline."""

    reason: Text
    deadline: AwareDatetime | None = None


class SuperviseBody(ActionBody):
    """督办: notifies the unit; recorded and counted."""

    note: Text


class EscalateBody(ActionBody):
    """吹哨: call a county department in."""

    department: UnitId
    reason: Text


class ReportInBody(ActionBody):
    """报到: the called department acknowledges."""

    note: Note = ""


class AddCohandlerBody(ActionBody):
    """增加协办单位."""

    unit: UnitId


class MarkOverdueBody(ActionBody):
    """超期标记 by the sweep."""


class RecomputeDeadlineBody(ActionBody):
    """期限重算 by the system: the year's holiday notice (放假安排通知) made a provisional deadline final."""

    deadline: AwareDatetime
    overdue: bool
    reason: Note = ""


class SelfHandleBody(ActionBody):
    """自办: a grid worker handled it on the spot."""

    handler: str | None = None
    note: Note = ""
