"""Metrics HTTP routes (thin) 绩效考核接口: indicators, scores, sign-off, exports (schemes and ratings:
:mod:`services.metrics.api_schemes`).

Every route takes a staff bearer token (``shared.auth``). Scope 数据范围 (:mod:`services.metrics.access`,
one rule with dispatch: :mod:`shared.visibility`): ``admin``, ``hotline`` and county-wide staff (township
``*``) see everything; township-bound staff see their township's rows only; a ``unit`` token sees its own
unit only (and the cases it handles, helps with or was whistled to). Writes: schemes and sign-off —
``admin``; ratings — ``admin`` or the township's own ``township_admin``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse

from services.metrics.access import narrowed, visible_rows
from services.metrics.answers import (
    CaseDurations,
    Indicators,
    PeriodRecord,
    Recomputed,
    ScoreCases,
    Scores,
    SignedOff,
)
from services.metrics.api_common import (
    TAG_ADMIN,
    TAG_INDICATORS,
    TAG_SCORES,
    UNPROCESSABLE,
    PeriodId,
    State,
    parse_period_id,
    refusals_as_http,
)
from services.metrics.context import utc_now
from services.metrics.durations import case_durations
from services.metrics.exports import XLSX_MEDIA_TYPE, score_table, to_csv, to_xlsx
from services.metrics.indicator_view import indicator_table
from services.metrics.periods import evaluation_moment, period_between
from services.metrics.queries import GROUP_KEYS, Filters
from services.metrics.rankings import ranking, score_cases
from services.metrics.signoff import AlreadySignedOffError, PeriodNotEndedError, period_record, sign_off
from services.metrics.worktime import recompute_working_durations
from shared.answers import documented
from shared.auth import Admin, Staff
from shared.errors import MAX_INT64
from shared.visibility import Viewer

router = APIRouter()


# --------------------------------------------------------------------------- indicators 指标


@router.get(
    "/v1/indicators",
    **documented(Indicators),
    tags=[TAG_INDICATORS],
    summary="Indicators per group for a period 分组指标（签收率、办结率、超期率、满意率、办结时长…）",
)
async def get_indicators(
    state: State,
    principal: Staff,
    period: Annotated[str | None, Query(description="2026-11-20, 2026-W47, 2026-11, 2026-Q4, 2026 or A..B")] = None,
    from_: Annotated[str | None, Query(alias="from", description="start date/time (with `to`)")] = None,
    to: Annotated[str | None, Query(description="end date (inclusive) or date-time (exclusive)")] = None,
    as_of: Annotated[datetime | None, Query(description="evaluate as of (default: now, or the period's end)")] = None,
    unit: str | None = None,
    township: str | None = None,
    kind: str | None = None,
    source: str | None = None,
    matter: str | None = None,
    matter_group: str | None = None,
    group_by: Annotated[str, Query(description=f"comma-separated, of: {', '.join(GROUP_KEYS)}; empty = total")] = (
        "unit"
    ),
) -> dict[str, Any]:
    if period is not None and (from_ is not None or to is not None):
        raise HTTPException(UNPROCESSABLE, "give either period or from/to, not both")
    if period is not None:
        p = parse_period_id(period)
    elif from_ is not None and to is not None:
        try:
            p = period_between(from_, to)
        except ValueError as exc:
            raise HTTPException(UNPROCESSABLE, str(exc)) from exc
    else:
        raise HTTPException(UNPROCESSABLE, "give period=… or both from=… and to=…")
    keys = [k.strip() for k in group_by.split(",") if k.strip()]
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown or len(set(keys)) != len(keys):
        raise HTTPException(
            UNPROCESSABLE,
            f"group_by: unknown or repeated key(s) {unknown or keys}; allowed: {', '.join(GROUP_KEYS)}",
        )
    viewer = Viewer.of(principal)
    with refusals_as_http():
        filters = Filters(
            unit=narrowed(viewer, "unit", unit),
            township=narrowed(viewer, "township", township),
            kind=kind,
            source=source,
            matter=matter,
            matter_group=matter_group,
        )
        moment = evaluation_moment(p, as_of, now=utc_now())
    async with state.runtime.uow() as uow:
        rows, total = await indicator_table(session=uow.session, period=p, as_of=moment, group_by=keys, filters=filters)
    return {
        "period": p.as_json(),
        "as_of": moment.isoformat(),
        "group_by": keys,
        "filters": filters.as_dict(),
        "rows": rows,
        "total": total,
    }


@router.get(
    "/v1/cases/{case_id}/durations",
    **documented(CaseDurations),
    tags=[TAG_INDICATORS],
    summary="A case's 处置时长 and 结案时长, natural and working hours 案件时长（自然时/工作时）",
)
async def get_case_durations(state: State, case_id: uuid.UUID, principal: Staff) -> dict[str, Any]:
    async with state.runtime.uow() as uow:
        answer = await case_durations(
            session=uow.session, case_id=case_id, viewer=Viewer.of(principal), calendar=state.calendar, now=utc_now()
        )
    if answer is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case (or not in your scope)")
    return answer


# --------------------------------------------------------------------------- scores 评分与排名


@router.get(
    "/v1/scores/{scheme_id}/{period_id}",
    **documented(Scores),
    tags=[TAG_SCORES],
    summary="Ranking with grades 考核排名（按乡镇、按单位类型）",
    description="Rows ordered by unit kind, township and rank; `rank_in_township` (同乡镇同类) and `rank_in_kind` "
    "(全县同类). A signed-off period answers its published scores, with `revision` and each row's `revised` "
    "figures beside them when later events changed them. Each row links to its cases (`cases_url`).",
)
async def get_scores(
    state: State,
    scheme_id: str,
    period_id: PeriodId,
    principal: Staff,
    township: str | None = None,
    kind: str | None = None,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    period = parse_period_id(period_id)
    with refusals_as_http():
        async with state.runtime.uow() as uow:
            view = await ranking(session=uow.session, scheme_id=scheme_id, period=period, as_of=as_of, now=utc_now())
    return view.to_json(visible_rows(view.rows, Viewer.of(principal), township=township, kind=kind))


@router.get(
    "/v1/scores/{scheme_id}/{period_id}/{unit}/cases",
    **documented(ScoreCases),
    tags=[TAG_SCORES],
    summary="The cases behind a unit's score 得分对应的案件（逐案贡献）",
)
async def get_score_cases(
    state: State,
    scheme_id: str,
    period_id: PeriodId,
    unit: str,
    principal: Staff,
    township: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
) -> dict[str, Any]:
    period = parse_period_id(period_id)
    with refusals_as_http():
        async with state.runtime.uow() as uow:
            found = await score_cases(
                session=uow.session,
                viewer=Viewer.of(principal),
                scheme_id=scheme_id,
                period=period,
                unit=unit,
                township=township,
                limit=limit,
                offset=offset,
                now=utc_now(),
            )
    return {
        "scheme": scheme_id,
        "period": period.as_json(),
        "as_of": found.as_of.isoformat(),
        "unit": found.unit,
        "township": found.township,
        "total": found.total,
        "limit": limit,
        "offset": offset,
        "cases": found.cases,
        "note": "signed-off period: cases show today's facts; the published figures are frozen"
        if found.signed_off
        else None,
    }


# --------------------------------------------------------------------------- sign-off 签发


@router.post(
    "/v1/periods/{period_id}/sign-off",
    tags=[TAG_SCORES],
    summary="Sign a period off 签发周期 (admin): freeze its published scores",
    status_code=201,
    **documented(SignedOff, status=201, extra={409: {"description": "period not ended yet, or signed off already"}}),
)
async def post_sign_off(state: State, period_id: PeriodId, principal: Admin) -> JSONResponse:
    period = parse_period_id(period_id)
    try:
        async with state.runtime.uow() as uow:
            result = await sign_off(
                session=uow.session, period=period, by=principal.token_name, now=utc_now(), calendar=state.calendar
            )
    except (PeriodNotEndedError, AlreadySignedOffError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return JSONResponse(result, status_code=201)


@router.get(
    "/v1/periods/{period_id}",
    **documented(PeriodRecord),
    tags=[TAG_SCORES],
    summary="A period's sign-off and revisions 签发与修订记录",
)
async def get_period(state: State, period_id: PeriodId, _: Staff) -> dict[str, Any]:
    period = parse_period_id(period_id)
    async with state.runtime.uow() as uow:
        record = await period_record(session=uow.session, period_id=period.id)
    return {"period": period.as_json(), **record}


# --------------------------------------------------------------------------- exports 导出


@router.get(
    "/v1/export/{scheme_id}/{filename}",
    tags=[TAG_SCORES],
    summary="Export a ranking 导出考核结果: `{period}.csv` or `{period}.xlsx`",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, XLSX_MEDIA_TYPE: {}}}},
)
async def export_scores(
    state: State,
    scheme_id: str,
    filename: str,
    principal: Staff,
    township: str | None = None,
    kind: str | None = None,
) -> Response:
    stem, dot, suffix = filename.rpartition(".")
    if not dot or suffix not in ("csv", "xlsx"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "export as {period}.csv or {period}.xlsx")
    period = parse_period_id(stem)
    with refusals_as_http():
        async with state.runtime.uow() as uow:
            view = await ranking(session=uow.session, scheme_id=scheme_id, period=period, as_of=None, now=utc_now())
    table = score_table(
        scheme=view.scheme,
        period_id=period.id,
        as_of=view.as_of,
        rows=visible_rows(view.rows, Viewer.of(principal), township=township, kind=kind),
        signed_off=view.signed_off,
        revised=view.revised,
    )
    scheme = view.active
    name = quote(f"{scheme.name}-{period.id}.{suffix}")
    ascii_name = f"{scheme.id}-{period.id}.{suffix}".replace('"', "")
    headers = {"Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{name}"}
    if suffix == "csv":
        return Response(to_csv(table), media_type="text/csv; charset=utf-8", headers=headers)
    return Response(to_xlsx(table), media_type=XLSX_MEDIA_TYPE, headers=headers)


# --------------------------------------------------------------------------- admin 管理


@router.post(
    "/v1/admin/recompute-durations",
    **documented(Recomputed),
    tags=[TAG_ADMIN],
    summary="Recompute every stored working duration 重算全部工作时长 (after a calendar change; admin)",
)
async def post_recompute_durations(state: State, _: Admin, only_provisional: bool = False) -> dict[str, Any]:
    started = datetime.now(UTC)
    async with state.runtime.engine.begin() as conn:
        changed = await recompute_working_durations(
            conn=conn, calendar=state.calendar, only_provisional=only_provisional
        )
    seconds = (datetime.now(UTC) - started).total_seconds()
    return {"changed": changed, "seconds": round(seconds, 3), "only_provisional": only_provisional}
