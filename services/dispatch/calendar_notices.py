"""Loading a year's holiday notice 载入国务院放假通知: read the override file again, then recompute the
provisional deadlines of open cases on the final calendar, a page per transaction.

This is the orchestration behind ``POST /v1/admin/calendar/reload`` and the recompute at start-up (the
file may have been edited while dispatch was down); each page is one unit of work, the rule is
:mod:`services.dispatch.deadline_recompute` and the page :func:`deadline_reload.recompute_deadlines`.
Idempotent: a case whose deadline is final, or whose recompute gives the same deadlines, is left
alone, so loading the same notice twice changes nothing. 幂等：同一通知载入两次不产生任何变化。
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from services.dispatch.context import DispatchContext, utc_now
from services.dispatch.deadline_reload import recompute_deadlines
from shared.calendar import WorkingCalendar
from shared.logging import get_logger

__all__ = ["CalendarNotLoadedError", "NoticeLoad", "load_notices"]

log = get_logger(__name__)


class CalendarNotLoadedError(RuntimeError):
    """No jurisdiction snapshot yet, so no county calendar to load. 尚未加载辖区快照。"""


@dataclass
class NoticeLoad:
    """What loading the override file did. 载入结果。"""

    county: str | None
    years: dict[int, str]
    """Source of each year from this one to two years ahead (notice / chinesecalendar / statutory).
    近三年各年日历来源（statutory 即暂定）。"""
    changed: list[uuid.UUID] = field(default_factory=list)


async def load_notices(ctx: DispatchContext, *, reread: bool, now: datetime | None = None) -> NoticeLoad:
    """Read the override file again when ``reread``, then recompute every open provisional deadline.

    重新读取覆盖配置（``reread``）后重算全部在办案件的暂定期限。Raises :class:`CalendarNotLoadedError`
    and :class:`~shared.calendar_config.CalendarConfigError` (the calendar in use is then kept).
    """
    calendar: WorkingCalendar | None
    if reread:
        calendar = ctx.source.reload_calendar()
    else:
        calendar = ctx.source.current.calendar if ctx.source.current is not None else None
    if calendar is None:
        raise CalendarNotLoadedError("no jurisdiction loaded yet / 尚未加载辖区，稍后再试")
    moment = now or utc_now()
    first = moment.year
    done = NoticeLoad(calendar.county, {y: calendar.national.source(y) for y in range(first, first + 3)})
    limit = ctx.settings.overdue_sweep_batch
    after: uuid.UUID | None = None
    correlation_id = f"calendar-notice-{uuid.uuid4().hex[:8]}"
    while True:
        async with ctx.runtime.uow() as uow:
            page = await recompute_deadlines(
                session=uow.session,
                calendar=calendar,
                now=moment,
                correlation_id=correlation_id,
                after=after,
                limit=limit,
            )
        done.changed.extend(page.changed)
        if page.seen < limit or page.last_id is None:
            break
        after = page.last_id
    if done.changed:
        log.info("deadlines recomputed on the loaded calendar", count=len(done.changed), years=done.years)
    return done
