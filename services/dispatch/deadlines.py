"""Deadline rules of dispatch (派遣时限规则): every one in one place.

Pure: no I/O, no clock (``at`` / ``now`` is passed in); the working calendar
does the date arithmetic. 纯函数：无 I/O、无时钟；日期运算交给工作日历。

* 特急件 runs on natural time: a ``critical`` report's deadline counts natural
  hours whatever the matter's basis. 特急件一律按自然时计时。
* 办结期限 — the matter's deadline for the urgency: hours on the matter's basis, or
  working days (ending at the same clock time on the Nth working day, or that day's
  end after hours), or a rule's override hours, which routing passes in. 办结期限。
* 签收期限 — :data:`ACCEPT_WORKING_DAYS` working days after dispatch, never later
  than the 办结期限. 签收期限（不晚于办结期限）。
* 退单时限 — :data:`REJECT_WINDOW_WORKING_DAYS` working days after dispatch. 退单时限。
* 报到时限 — :data:`REPORT_IN_WORKING_DAYS` working day after a 吹哨. 吹哨后报到时限。
* 延期 — at most :data:`MAX_EXTENSIONS` approved extension per case, each at most
  :data:`EXTENSION_CAP_WORKING_DAYS` working days past the deadline in force. 延期次数与上限。
* provisional 日历暂定 — a deadline or window that spans calendar days not yet
  published as final. 时限跨越尚未正式公布的日历日时标记为暂定。
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.calendar import Deadline, WorkingCalendar
from shared.jurisdiction import DeadlineAmount, Matter, WorkingDays
from shared.vocabulary import TimeBasis

__all__ = [
    "ACCEPT_WORKING_DAYS",
    "EXTENSION_CAP_WORKING_DAYS",
    "MAX_EXTENSIONS",
    "REJECT_WINDOW_WORKING_DAYS",
    "REPORT_IN_WORKING_DAYS",
    "DeadlineFacts",
    "accept_deadline",
    "amount_text",
    "deadline_facts",
    "deadline_for",
    "extension_refusal",
    "matter_deadline",
    "reject_window_ends",
    "report_in_deadline",
    "time_basis_for",
]

#: 签收 within this many working days of dispatch. 签收时限（工作日）。
ACCEPT_WORKING_DAYS = 1
#: 退单 allowed within this many working days of dispatch. 退单时限（工作日）。
REJECT_WINDOW_WORKING_DAYS = 2
#: 报到 limit after a 吹哨, in working days. 吹哨后报到时限（工作日）。
REPORT_IN_WORKING_DAYS = 1
#: Approved extensions a case may have. 每案可获批延期次数。
MAX_EXTENSIONS = 1
#: How far past the deadline in force an extension may reach, in working days. 延期上限（工作日）。
EXTENSION_CAP_WORKING_DAYS = 10


def time_basis_for(urgency: str, matter_basis: TimeBasis) -> TimeBasis:
    """The clock a deadline runs on: natural for 特急件, else the matter's. 计时口径（特急件按自然时）。"""
    return "natural" if urgency == "critical" else matter_basis


def accept_deadline(calendar: WorkingCalendar, at: datetime, deadline: datetime | None) -> datetime:
    """签收期限 of a dispatch at ``at``: never after the 办结期限 ``deadline``. 签收期限。"""
    accept = calendar.add_working_days(at, ACCEPT_WORKING_DAYS)
    return accept if deadline is None else min(accept, deadline)


def reject_window_ends(calendar: WorkingCalendar, at: datetime) -> datetime:
    """End of the 退单 window of a dispatch at ``at``. 退单时限。"""
    return calendar.add_working_days(at, REJECT_WINDOW_WORKING_DAYS)


def report_in_deadline(calendar: WorkingCalendar, at: datetime) -> datetime:
    """报到 limit of a 吹哨 at ``at``. 报到时限。"""
    return calendar.add_working_days(at, REPORT_IN_WORKING_DAYS)


def deadline_for(calendar: WorkingCalendar, at: datetime, amount: DeadlineAmount, basis: TimeBasis) -> Deadline:
    """The due time ``amount`` after ``at``: hours on ``basis``, or working days. 办结期限。"""
    if isinstance(amount, WorkingDays):
        return calendar.deadline_in_working_days(at, amount.working_days)
    return calendar.deadline(at, float(amount), basis)


def amount_text(amount: DeadlineAmount) -> str:
    """``5 个工作日`` or ``40 小时``, as the routing explanation says it. 时限的中文表述。"""
    return f"{amount.working_days} 个工作日" if isinstance(amount, WorkingDays) else f"{amount:g} 小时"


def extension_refusal(calendar: WorkingCalendar, deadline: datetime, requested: datetime) -> str | None:
    """Why a 延期 to ``requested`` is refused (None if within the cap). 超出延期上限的原因。"""
    cap = calendar.add_working_days(deadline, EXTENSION_CAP_WORKING_DAYS)
    if requested <= cap:
        return None
    return (
        f"延期最多 {EXTENSION_CAP_WORKING_DAYS} 个工作日（至 {cap.isoformat(timespec='minutes')}）"
        f" / an extension may reach at most {EXTENSION_CAP_WORKING_DAYS} working days past the deadline"
        f" ({cap.isoformat(timespec='minutes')})"
    )


@dataclass(frozen=True, slots=True)
class DeadlineFacts:
    """办结期限, 签收期限, 退单时限 and the provisional flag of one (now, hours, basis). 时限计算结果。"""

    due_at: datetime
    accept: datetime
    window: datetime
    provisional: bool


def deadline_facts(
    calendar: WorkingCalendar, now: datetime, amount: DeadlineAmount, basis: TimeBasis
) -> DeadlineFacts:
    """The deadlines of a dispatch at ``now`` for ``amount`` on ``basis`` (routing's step 5). 派遣时限。"""
    due = deadline_for(calendar, now, amount, basis)
    window = reject_window_ends(calendar, now)
    provisional = due.provisional or calendar.spans_provisional(now, window)
    return DeadlineFacts(due.due_at, accept_deadline(calendar, now, due.due_at), window, provisional)


def matter_deadline(
    calendar: WorkingCalendar, matter: Matter | None, urgency: str, at: datetime
) -> tuple[datetime | None, TimeBasis | None, bool]:
    """办结期限 from ``at`` of a matter at ``urgency``, its basis and the provisional flag. 事项办结期限。

    ``(None, None, False)`` without a matter. 无事项时为空。
    """
    if matter is None:
        return None, None, False
    basis = time_basis_for(urgency, matter.time_basis)
    due = deadline_for(calendar, at, matter.deadlines.for_urgency(urgency), basis)  # type: ignore[arg-type]
    return due.due_at, basis, due.provisional
