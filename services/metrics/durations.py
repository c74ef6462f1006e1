"""One case's durations 案件时长: 处置时长 (dispatch → 办结) and 结案时长 (report → 结案), on the natural
and the working clock, with the time elapsed so far for a case still open.

:func:`case_durations` reads the case's fact and answers only to a caller who may see the case
(:func:`shared.visibility.sees_case`); :func:`durations_json` is the pure shaping of a fact row.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.store import load_fact_row
from shared.calendar import WorkingCalendar, natural_hours_between
from shared.visibility import Viewer, sees_case

__all__ = ["case_durations", "durations_json"]


async def case_durations(
    *, session: AsyncSession, case_id: uuid.UUID, viewer: Viewer, calendar: WorkingCalendar, now: datetime
) -> dict[str, Any] | None:
    """The case's durations, or ``None`` when there is no such case or ``viewer`` may not see it.

    Metrics' fact holds the primary unit, the co-handlers and the department the case was last
    escalated to (吹哨部门). 无此案件或不在可见范围内时返回 ``None``。"""
    fact = await load_fact_row(session=session, case_id=case_id)
    if fact is None or not sees_case(
        viewer,
        township=fact["township"],
        unit=fact["unit"],
        cohandlers=fact["cohandlers"] or (),
        escalated_to=fact["escalated_to"],
    ):
        return None
    return durations_json(fact, calendar=calendar, now=now)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def durations_json(fact: dict[str, Any], *, calendar: WorkingCalendar, now: datetime) -> dict[str, Any]:
    """A case fact row as ``GET /v1/cases/{id}/durations`` answers it. 案件时长的接口表示。"""
    elapsed: dict[str, float] | None = None
    if fact["dispatched_at"] is not None and fact["resolved_at"] is None:
        elapsed = {
            "natural_hours": round(natural_hours_between(fact["dispatched_at"], now), 4),
            "working_hours": round(calendar.working_hours_between(fact["dispatched_at"], now), 4),
        }
    done = fact["resolved_at"] or fact["closed_at"]
    overdue_now = fact["deadline"] is not None and (done if done is not None else now) > fact["deadline"]
    return {
        "case_id": str(fact["case_id"]),
        "unit": fact["unit"],
        "unit_kind": fact["unit_kind"],
        "township": fact["township"],
        "source": fact["source"],
        "matter": fact["matter"],
        "time_basis": fact["time_basis"],
        "reported_at": _iso(fact["reported_at"]),
        "dispatched_at": _iso(fact["dispatched_at"]),
        "accepted_at": _iso(fact["accepted_at"]),
        "resolved_at": _iso(fact["resolved_at"]),
        "closed_at": _iso(fact["closed_at"]),
        "deadline": _iso(fact["deadline"]),
        "deadline_provisional": fact["provisional"],
        "overdue": overdue_now,
        "handling": {
            "label": "处置时长（派遣→办结）",
            "natural_hours": fact["handling_natural_h"],
            "working_hours": fact["handling_working_h"],
        },
        "closing": {
            "label": "结案时长（上报→结案）",
            "natural_hours": fact["closing_natural_h"],
            "working_hours": fact["closing_working_h"],
        },
        "durations_provisional": fact["durations_provisional"],
        "elapsed_so_far": elapsed,
        "counts": {
            "rejections": fact["rejections"],
            "extensions": fact["extensions"],
            "reworks": fact["reworks"],
            "reopens": fact["reopens"],
            "supervisions": fact["supervisions"],
            "escalations": fact["escalations"],
        },
        "satisfaction": fact["satisfaction"],
        "solved": fact["solved"],
        "events": fact["event_count"],
    }
