"""Deadline recompute rule 期限重算规则: when a year's holiday notice is loaded, what a case's stored
deadline becomes. Pure: no I/O, no clock (``now`` is passed in).

A deadline computed on a year the calendar did not know yet is *provisional* (暂定: statutory holidays
and weekends only, the team's domain notes "Years the calendar does not know yet"). Once the State
Council's notice for that year is loaded into the county override file, the provisional deadlines of
open cases are computed again on the final calendar:

* only a deadline routing computed (办结期限 from the matter or a rule, from the dispatch time) is
  recomputed — an approved extension, a manual assignment's or a re-dispatch's deadline was set by
  a person or another rule and is kept; 仅重算派遣时按规则计算、至今未被改动的期限；
* the 签收期限 follows when the case is not accepted yet; 未签收的同时重算签收期限；
* the overdue flag 超期标记 is cleared when the new deadline is still ahead; a recompute never sets
  it (the sweep flags overdue cases, with their ``case.overdue`` event); 新期限未到则撤销超期标记；
* nothing changes → no change (loading the same notice twice changes nothing). 无变化则不记录。
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from services.dispatch.deadlines import deadline_facts
from shared.calendar import WorkingCalendar
from shared.jurisdiction import DeadlineAmount, WorkingDays
from shared.vocabulary import TimeBasis

__all__ = ["RECOMPUTED_KEY", "DeadlineChange", "RoutedDeadline", "recompute", "routed_deadline"]

#: Where a recompute notes the deadline it set, in the case's stored routing explanation (so a later
#: notice may recompute it again, and a person's later change is recognised). 重算结果在解释中的记录键。
RECOMPUTED_KEY: Final = "deadline_recomputed"


@dataclass(frozen=True, slots=True)
class RoutedDeadline:
    """How routing computed a case's 办结期限: from ``start``, ``amount`` on ``basis``. 派遣时的期限算法。"""

    start: datetime
    amount: DeadlineAmount
    basis: TimeBasis
    deadline: datetime
    """The deadline routing (or the last recompute) set. 派遣（或上次重算）设定的期限。"""


@dataclass(frozen=True, slots=True)
class DeadlineChange:
    """A case's deadlines before and after the recompute. 重算前后的期限。"""

    old_deadline: datetime
    deadline: datetime
    accept_deadline: datetime | None
    provisional: bool
    overdue: bool
    reason: str


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return None


def routed_deadline(explanation: Mapping[str, Any]) -> RoutedDeadline | None:
    """The deadline rule of a case's stored routing explanation, or ``None`` (no routed deadline).

    由派遣解释取得期限算法；无则 ``None``。"""
    start = _moment(explanation.get("decided_at"))
    basis = explanation.get("time_basis")
    hours, days = explanation.get("deadline_hours"), explanation.get("deadline_working_days")
    recomputed = explanation.get(RECOMPUTED_KEY)
    set_at = _moment(recomputed.get("deadline")) if isinstance(recomputed, Mapping) else None
    deadline = set_at or _moment(explanation.get("deadline"))
    if start is None or deadline is None or basis not in ("working", "natural"):
        return None
    amount: DeadlineAmount
    if isinstance(days, int) and days > 0:
        amount = WorkingDays(working_days=days)
    elif isinstance(hours, int | float) and hours > 0:
        amount = float(hours)
    else:
        return None
    return RoutedDeadline(start, amount, basis, deadline)


def recompute(
    *,
    calendar: WorkingCalendar,
    routed: RoutedDeadline | None,
    deadline: datetime | None,
    accept_by: datetime | None,
    accepted: bool,
    provisional: bool,
    overdue: bool,
    now: datetime,
) -> DeadlineChange | None:
    """The case's deadlines on ``calendar`` (the final one), or ``None`` when nothing changes.

    ``deadline`` is the one in force, ``accept_by`` the stored 签收期限, ``accepted`` whether the
    holder has 签收 already. 按新日历重算；无变化返回 ``None``。
    """
    if not provisional or routed is None or deadline is None or deadline != routed.deadline:
        return None
    # the very computation routing made (办结期限, 签收期限, the provisional flag), on the new calendar
    due = deadline_facts(calendar, routed.start, routed.amount, routed.basis)
    new_accept = accept_by if accepted else due.accept
    still_overdue = overdue and now > due.due_at
    if (due.due_at, new_accept, due.provisional, still_overdue) == (deadline, accept_by, provisional, overdue):
        return None
    what = "期限不变" if due.due_at == deadline else f"办结期限 {_fmt(deadline)} → {_fmt(due.due_at)}"
    state = "仍为暂定" if due.provisional else "已按国务院放假通知确定"
    reason = f"日历更新：{what}（{state}）" + ("，撤销超期标记" if overdue and not still_overdue else "")
    return DeadlineChange(deadline, due.due_at, new_accept, due.provisional, still_overdue, reason)


def _fmt(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")
