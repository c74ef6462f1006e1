"""Dispatch HTTP route for loading the calendar override file 载入日历覆盖配置 (thin, admin only).

After an operator adds the State Council's holiday notice for a year to the override file
(``deploy/calendar/overrides.yaml``, ``notices``), this reads it again and recomputes the provisional
deadlines of open cases (:mod:`services.dispatch.calendar_notices`); each changed case gets one
timeline entry (期限重算) and one ``case.deadline_recomputed`` event.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status

from services.dispatch.answers import CalendarLoaded
from services.dispatch.api_common import Ctx
from services.dispatch.calendar_notices import CalendarNotLoadedError, load_notices
from shared.answers import documented
from shared.auth import Admin
from shared.calendar_config import CalendarConfigError

router = APIRouter()


@router.post(
    "/v1/admin/calendar/reload",
    **documented(CalendarLoaded, 422, 503),
    tags=["admin 管理"],
    summary="Load the calendar override file again 重新载入日历覆盖配置 (admin)",
    description="Reads the override file again (e.g. after the year's 放假安排通知 was added under `notices`) and "
    "recomputes the provisional deadlines of open cases on it: one timeline entry 期限重算 per changed case. "
    "Loading the same file twice changes nothing. 422: the file is invalid (the calendar in use is kept); "
    "503: no jurisdiction loaded yet.",
)
async def reload_calendar_route(ctx: Ctx, _: Admin) -> dict[str, Any]:
    try:
        done = await load_notices(ctx, reread=True)
    except CalendarConfigError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None
    except CalendarNotLoadedError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    return {
        "county": done.county,
        "years": {str(year): source for year, source in done.years.items()},
        "recomputed": len(done.changed),
        "cases": [str(case_id) for case_id in done.changed],
    }
