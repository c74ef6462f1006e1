"""Metrics HTTP routes for assessment schemes and township ratings 考核方案与乡镇评价接口 (thin).

Same rules as :mod:`services.metrics.api` (helpers and tags: :mod:`services.metrics.api_common`):
schemes are written by ``admin``; ratings by ``admin`` or the township's own ``township_admin``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, status
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationError

from services.metrics.answers import Rating, Ratings, Scheme, Schemes, SchemeWithVersions
from services.metrics.api_common import (
    TAG_SCHEMES,
    TAG_SCORES,
    PeriodId,
    Rater,
    State,
    parse_period_id,
    refusals_as_http,
)
from services.metrics.ratings import rate_agency, visible_ratings
from services.metrics.scheme_store import (
    SchemeConflictError,
    active_schemes,
    find_scheme,
    put_scheme,
    scheme_versions,
    validation_errors,
)
from services.metrics.scoring import AssessmentScheme
from shared.answers import documented
from shared.auth import Admin, Staff
from shared.errors import MAX_INT32
from shared.inputs import NulFreeModel
from shared.visibility import Viewer

router = APIRouter()


# --------------------------------------------------------------------------- schemes 考核方案


def _scheme_json(scheme: AssessmentScheme) -> dict[str, Any]:
    body = scheme.model_dump(mode="json")
    body["total_weight"] = scheme.township_rating_weight + sum(i.weight for i in scheme.indicators)
    body["headers"] = scheme.headers()
    return body


@router.get(
    "/v1/schemes", **documented(Schemes), tags=[TAG_SCHEMES], summary="Active assessment schemes 生效的考核方案"
)
async def list_schemes(state: State, _: Staff) -> dict[str, Any]:
    async with state.runtime.uow() as uow:
        schemes = await active_schemes(session=uow.session)
    return {"schemes": [_scheme_json(s) for s in schemes.values()]}


@router.get(
    "/v1/schemes/{scheme_id}",
    **documented(SchemeWithVersions),
    tags=[TAG_SCHEMES],
    summary="One scheme and its versions 方案及其版本",
)
async def get_scheme_route(
    state: State,
    scheme_id: str,
    _: Staff,
    version: Annotated[int | None, Query(ge=1, le=MAX_INT32)] = None,
) -> dict[str, Any]:
    with refusals_as_http():
        async with state.runtime.uow() as uow:
            scheme = await find_scheme(session=uow.session, scheme_id=scheme_id, version=version)
            versions = await scheme_versions(session=uow.session, scheme_id=scheme_id)
    return {**_scheme_json(scheme), "versions": versions}


_SCHEME_EXAMPLE = {
    "name": "数字城管专业部门考核（本县）",
    "kind": "standard",
    "unit_kinds": ["township_office", "enforcement_team", "county_department"],
    "min_cases": 5,
    "grade_bands": {"A": 90, "B": 75, "C": 60, "D": 40, "E": 0},
    "indicators": [
        {"indicator": "resolution_rate", "weight": 30},
        {"indicator": "ontime_resolution_rate", "weight": 30},
        {"indicator": "overdue_rate", "weight": 20, "counts_against": True},
        {"indicator": "rework_rate", "weight": 20, "counts_against": True},
    ],
}


@router.put(
    "/v1/schemes/{scheme_id}",
    tags=[TAG_SCHEMES],
    summary="Store a new version of a scheme 新增方案版本 (admin)",
    description="The body is a scheme (as in deploy/assessment/*.yaml). `version` may be omitted (→ latest + 1). "
    "Weights (+ township_rating_weight) must sum to 100; 422 names the field. The new version becomes active; "
    "stored versions never change, and signed-off periods keep the version they were scored with.",
    **documented(Scheme, extra={409: {"description": "version not above the latest, or id differs from the path"}}),
)
async def put_scheme_route(
    state: State,
    scheme_id: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_\-]*$")],
    body: Annotated[dict[str, Any], Body(openapi_examples={"example": {"value": _SCHEME_EXAMPLE}})],
    principal: Admin,
) -> JSONResponse:
    try:
        async with state.runtime.uow() as uow:
            scheme = await put_scheme(session=uow.session, scheme_id=scheme_id, body=body, by=principal.token_name)
    except ValidationError as exc:
        return JSONResponse({"detail": validation_errors(exc)}, status_code=422)
    except SchemeConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return JSONResponse(_scheme_json(scheme), status_code=200)


# --------------------------------------------------------------------------- ratings 乡镇评价


class RatingBody(NulFreeModel):
    """A township's rating of a stationed agency for one period 乡镇对派驻机构的周期评价."""

    rating: float = Field(ge=0, le=100, description="0–100")
    note: str | None = Field(None, max_length=2000)


@router.put(
    "/v1/ratings/{period_id}/{township}/{unit}",
    **documented(Rating),
    tags=[TAG_SCORES],
    summary="Enter the township's rating of a stationed agency 录入乡镇评价 (以乡镇为主)",
)
async def put_rating_route(
    state: State,
    period_id: PeriodId,
    township: str,
    unit: str,
    body: RatingBody,
    principal: Rater,
) -> dict[str, Any]:
    period = parse_period_id(period_id)
    if not principal.sees_township(township):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"your token rates for township {principal.township!r} only")
    with refusals_as_http():
        async with state.runtime.uow() as uow:
            marked = await rate_agency(
                session=uow.session,
                period_id=period.id,
                township=township,
                unit=unit,
                rating=body.rating,
                note=body.note,
                by=principal.token_name,
            )
    if marked:
        state.revisions_wake.set()
    return {"period": period.id, "township": township, "unit": unit, "rating": body.rating, "note": body.note}


@router.get(
    "/v1/ratings/{period_id}",
    **documented(Ratings),
    tags=[TAG_SCORES],
    summary="Ratings entered for a period 周期乡镇评价",
)
async def get_ratings(state: State, period_id: PeriodId, principal: Staff) -> dict[str, Any]:
    period = parse_period_id(period_id)
    async with state.runtime.uow() as uow:
        ratings = await visible_ratings(session=uow.session, period_id=period.id, viewer=Viewer.of(principal))
    return {"period": period.id, "ratings": ratings}
