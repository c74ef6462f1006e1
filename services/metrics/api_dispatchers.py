"""Metrics HTTP route for dispatchers' 准确派遣率 (thin): hand dispatches per dispatcher in a period.

Who may read it: admins and dispatchers (the figure is about the command centre's own work).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from services.metrics.answers import Dispatchers
from services.metrics.api_common import TAG_INDICATORS, State, parse_period_id, refusals_as_http
from services.metrics.context import utc_now
from services.metrics.dispatchers import dispatcher_table
from services.metrics.periods import evaluation_moment
from shared.answers import documented
from shared.auth import StaffPrincipal, require_roles

router = APIRouter()

#: Route parameter type for a token that may read dispatchers' figures: admin or dispatcher.
DispatchDesk = Annotated[StaffPrincipal, Depends(require_roles("admin", "dispatcher"))]


@router.get(
    "/v1/dispatchers",
    **documented(Dispatchers),
    tags=[TAG_INDICATORS],
    summary="Dispatchers' 准确派遣率 for a period 派遣员准确派遣率",
    description="Per dispatcher: hand dispatches (手动派遣, 改派) made in the period, those neither rejected "
    "validly by the unit nor reassigned away afterwards, and their ratio 准确派遣率.",
)
async def get_dispatchers(
    state: State,
    _: DispatchDesk,
    period: Annotated[str, Query(description="2026-11, 2026-W47, 2026-Q4, 2026, 2026-11-20 or A..B")],
    as_of: Annotated[datetime | None, Query(description="evaluate as of (default: now, or the period's end)")] = None,
) -> dict[str, Any]:
    p = parse_period_id(period)
    with refusals_as_http():
        moment = evaluation_moment(p, as_of, now=utc_now())
    async with state.runtime.uow() as uow:
        rows = await dispatcher_table(session=uow.session, period=p, as_of=moment)
    return {"period": p.id, "as_of": moment.isoformat(), "rows": rows}
