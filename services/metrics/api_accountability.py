"""Metrics HTTP routes for the 监督问责 report (thin): the report of a period and its xlsx export.

Who may read it: admins, dispatchers and township admins; township-bound tokens see their own
township. Units do not: the report is about them.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from services.metrics.accountability_store import accountability_view, report_xlsx
from services.metrics.answers import Accountability
from services.metrics.api_common import State, parse_period_id, refusals_as_http
from services.metrics.context import utc_now
from services.metrics.exports import XLSX_MEDIA_TYPE
from services.metrics.units import unit_names
from shared.answers import documented
from shared.auth import StaffPrincipal, require_roles
from shared.visibility import Viewer

router = APIRouter()

TAG_ACCOUNTABILITY = "accountability 监督问责"

#: Route parameter type for a token that may read the 监督问责 report: admin, dispatcher, township admin.
Supervisor = Annotated[StaffPrincipal, Depends(require_roles("admin", "dispatcher", "township_admin"))]

Township = Annotated[str | None, Query(description="one township (county-wide tokens); others see their own")]


async def _view(state: State, period_id: str, principal: StaffPrincipal, township: str | None) -> dict[str, Any]:
    period = parse_period_id(period_id)
    with refusals_as_http():
        async with state.runtime.uow() as uow:
            return await accountability_view(
                session=uow.session,
                period=period,
                viewer=Viewer.of(principal),
                township=township,
                calendar=state.calendar,
                now=utc_now(),
            )


@router.get(
    "/v1/accountability",
    **documented(Accountability),
    tags=[TAG_ACCOUNTABILITY],
    summary="The 监督问责 report of a period 监督问责报告",
    description="Repeated overdue per unit, overdue again after an extension, rejections ruled invalid, whistles "
    "not answered by their 报到 deadline, 督办 not acted on within a working day, cases reopened or reworked more "
    "than once, joint-operation units absent or late 联合执法未报到 (with their operations); each finding belongs to "
    "the period it happened in and lists its cases. A signed-off period "
    "answers the report frozen at sign-off.",
)
async def get_accountability(
    state: State,
    principal: Supervisor,
    period: Annotated[str, Query(description="2026-11, 2026-W47, 2026-Q4, 2026, 2026-11-20 or A..B")],
    township: Township = None,
) -> dict[str, Any]:
    return await _view(state, period, principal, township)


@router.get(
    "/v1/accountability/{filename}",
    tags=[TAG_ACCOUNTABILITY],
    summary="Export the 监督问责 report 导出监督问责报告: `{period}.xlsx`",
    response_class=Response,
    responses={200: {"content": {XLSX_MEDIA_TYPE: {}}}},
)
async def export_accountability(
    state: State, filename: str, principal: Supervisor, township: Township = None
) -> Response:
    stem, dot, suffix = filename.rpartition(".")
    if not dot or suffix != "xlsx":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "export as {period}.xlsx")
    answer = await _view(state, stem, principal, township)
    ids = sorted({f["unit"] for f in answer["findings"] if f["unit"]})
    async with state.runtime.uow() as uow:
        names = {k: v.get("name") or k for k, v in (await unit_names(session=uow.session, ids=ids)).items()}
    body = report_xlsx(answer, title="监督问责报告", unit_names=names)
    ascii_name = f"accountability-{answer['period']}.xlsx".replace('"', "")
    utf8_name = quote(f"监督问责-{answer['period']}.xlsx")
    headers = {"Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{utf8_name}"}
    return Response(body, media_type=XLSX_MEDIA_TYPE, headers=headers)
