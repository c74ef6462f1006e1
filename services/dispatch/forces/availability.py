"""Duty and availability 值班与在岗 (pure: no I/O, the time is passed in).

A member is **on duty** at ``at`` when a shift of the roster lists them and its window holds ``at``;
a shift's window on a day runs from its ``start`` to its ``end`` in local time (Asia/Shanghai), and
an ``end`` not after ``start`` ends on the next day (夜班 across midnight: the window opened the
evening before still holds at 02:00). Which days a shift runs: every day (24-hour teams 24小时值守),
working days or rest days of the working calendar (:class:`shared.calendar.WorkingCalendar`: 调休
weekends are working days, holidays rest days), or listed dates. A member is **available** when on
duty and not marked busy from the terminal (on a task, off site, leave). 在岗 = 在班且未标记忙碌。
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.dispatch.forces.people import ShiftSpec
from shared.calendar import WorkingCalendar

__all__ = ["LOCAL_TZ", "Availability", "Duty", "MemberStatus", "RosterIndex", "availability", "shift_window"]

#: The roster's local time 排班所用本地时间.
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class Duty:
    """A shift window holding the moment 当前班次: since, until, its label and unit."""

    since: datetime
    until: datetime
    label: str
    unit: str


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """What the terminal last said 终端上报的状态: busy or free, why, since when."""

    busy: bool
    reason: str = ""
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Availability:
    """Whether a member can be sent now 是否可派, and why (``reason_zh``)."""

    available: bool
    duty: Duty | None
    busy: bool
    reason_zh: str


def _runs_on(shift: ShiftSpec, day: date, calendar: WorkingCalendar) -> bool:
    if shift.days == "daily":
        return True
    if shift.days == "working_days":
        return calendar.is_working_day(day)
    if shift.days == "rest_days":
        return not calendar.is_working_day(day)
    return day in shift.dates


def shift_window(shift: ShiftSpec, day: date, calendar: WorkingCalendar) -> tuple[datetime, datetime] | None:
    """The shift's window opening on ``day`` (None when it does not run that day). 某日班次的起止。"""
    if not _runs_on(shift, day, calendar):
        return None
    start = datetime.combine(day, shift.start, LOCAL_TZ)
    end_day = day if shift.end > shift.start else day + timedelta(days=1)
    return start, datetime.combine(end_day, shift.end, LOCAL_TZ)


class RosterIndex:
    """The roster's shifts by member (built once per load; :meth:`duty` answers per member). 按队员索引的排班。"""

    def __init__(self, shifts: Iterable[ShiftSpec]) -> None:
        self._by_member: dict[str, list[ShiftSpec]] = defaultdict(list)
        for shift in shifts:
            for member in dict.fromkeys(shift.members):
                self._by_member[member].append(shift)

    def shifts_of(self, member_id: str) -> Sequence[ShiftSpec]:
        return self._by_member.get(member_id, ())

    def duty(self, member_id: str, at: datetime, calendar: WorkingCalendar) -> Duty | None:
        """The window holding ``at`` that opened first (the longest on duty), or None. 当前所在班次。"""
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        today = at.astimezone(LOCAL_TZ).date()
        found: Duty | None = None
        for shift in self.shifts_of(member_id):
            for day in (today - timedelta(days=1), today):  # yesterday's night shift may still run
                window = shift_window(shift, day, calendar)
                if window is None or not window[0] <= at < window[1]:
                    continue
                if found is None or window[0] < found.since:
                    found = Duty(since=window[0], until=window[1], label=shift.label, unit=shift.unit)
        return found


def availability(duty: Duty | None, status: MemberStatus | None) -> Availability:
    """Available = on duty and not busy; the reason in plain Chinese. 在班且不忙即可派。"""
    busy = status is not None and status.busy
    if duty is None:
        return Availability(False, None, busy, "不在班 / off duty")
    since = duty.since.astimezone(LOCAL_TZ).strftime("%m-%d %H:%M")
    if busy:
        assert status is not None
        why = f"（{status.reason}）" if status.reason else ""
        return Availability(False, duty, True, f"在班但忙碌{why} / on duty but busy")
    return Availability(True, duty, False, f"在班（{duty.label or '班次'}，{since} 起） / on duty since {since}")
