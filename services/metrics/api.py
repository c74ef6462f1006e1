"""Metrics HTTP routes (thin) 绩效考核接口: indicators, scores, sign-off, exports (schemes and ratings:
:mod:`services.metrics.api_schemes`).

Every route takes a staff bearer token (``shared.auth``). Scope 数据范围: ``admin`` and
county-wide staff (township ``*``) see everything; township-bound staff see their township's
rows only; a ``unit`` token sees its own unit only. Writes: schemes and sign-off — ``admin``;
ratings — ``admin`` or the township's own ``township_admin``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from services.metrics.answers import (
    CaseDurations,
    Indicators,
    PeriodRecord,
    Recomputed,
    ScoreCases,
    Scores,
    SignedOff,
)
from services.metrics.exports import XLSX_MEDIA_TYPE, score_table, to_csv, to_xlsx
from services.metrics.periods import PERIOD_ID_PATTERN, Period, parse_period, period_between, plausible_moment
from services.metrics.queries import GROUP_KEYS, Filters, case_contributions, grouped_indicators
from services.metrics.scheme_store import (
    active_schemes,
    compute_scores,
    get_scheme,
)
from services.metrics.scoring import UNIT_KIND_LABELS, AssessmentScheme
from services.metrics.signoff import (
    AlreadySignedOffError,
    PeriodNotEndedError,
    diff_rows,
    latest_revision,
    list_revisions,
    sign_off,
    signoff_of,
)
from services.metrics.store import load_fact_row
from services.metrics.units import unit_names
from services.metrics.worktime import recompute_working_durations
from shared.answers import documented
from shared.auth import StaffPrincipal, require_roles
from shared.calendar import natural_hours_between
from shared.errors import MAX_INT64

if TYPE_CHECKING:
    from services.metrics.app import MetricsState

router = APIRouter()

TAG_INDICATORS = "indicators 指标"
TAG_SCHEMES = "schemes 考核方案"
TAG_SCORES = "scores 考核评分"
TAG_ADMIN = "admin 管理"

#: 422: the request is well-formed but its values are not (bad period id, group_by, rating …).
UNPROCESSABLE = 422

reader = require_roles()
admin_only = require_roles("admin")
rater = require_roles("admin", "township_admin")


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True, slots=True)
class Scope:
    """What a caller may see 数据范围: ``None`` = no restriction."""

    township: str | None
    unit: str | None

    @classmethod
    def of(cls, principal: StaffPrincipal) -> Scope:
        if principal.role == "unit":
            return cls(township=None, unit=principal.unit)
        if principal.whole_county:
            return cls(township=None, unit=None)
        return cls(township=principal.township, unit=None)

    def narrow(self, field: str, requested: str | None) -> str | None:
        """The filter to apply: the caller's own value; asking for another one is 403."""
        own = self.township if field == "township" else self.unit
        if own is None:
            return requested
        if requested is not None and requested != own:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"your token only sees {field} {own!r}, not {requested!r}")
        return own

    def sees(self, row: Mapping[str, Any]) -> bool:
        if self.unit is not None and row.get("unit") != self.unit:
            return False
        return self.township is None or row.get("township") == self.township


def _state(request: Request) -> MetricsState:
    state: MetricsState = request.app.state.metrics
    return state


def _now() -> datetime:
    return datetime.now(UTC)


#: A period id as the path names it (see :mod:`services.metrics.periods`; 2000–2099). 周期编号。
PeriodId = Annotated[
    str,
    Path(
        pattern=PERIOD_ID_PATTERN,
        description="2026-11-20, 2026-W47, 2026-11, 2026-Q4, 2026 or FROM..TO (2000–2099)",
        examples=["2026-11"],
    ),
]


def _period(period_id: str) -> Period:
    try:
        return parse_period(period_id)
    except ValueError as exc:
        raise HTTPException(UNPROCESSABLE, str(exc)) from exc


def _as_of(period: Period, as_of: datetime | None) -> datetime:
    if as_of is None:
        return period.default_as_of(_now())
    if as_of.tzinfo is None:
        raise HTTPException(UNPROCESSABLE, "as_of must carry a time zone, e.g. +08:00")
    try:
        return plausible_moment(as_of, "as_of")
    except ValueError as exc:
        raise HTTPException(UNPROCESSABLE, str(exc)) from exc


def _period_json(period: Period) -> dict[str, str]:
    return {"id": period.id, "kind": period.kind, "start": period.start.isoformat(), "end": period.end.isoformat()}


async def _scheme_or_404(request: Request, scheme_id: str, version: int | None = None) -> AssessmentScheme:
    async with _state(request).runtime.uow() as uow:
        scheme = await get_scheme(session=uow.session, scheme_id=scheme_id, version=version)
        if scheme is None:
            known = sorted(await active_schemes(session=uow.session))
    if scheme is None:
        what = f"scheme {scheme_id!r}" + (f" version {version}" if version is not None else "")
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown {what}; known schemes: {', '.join(known)}")
    return scheme


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# --------------------------------------------------------------------------- indicators 指标


@router.get(
    "/v1/indicators",
    **documented(Indicators),
    tags=[TAG_INDICATORS],
    summary="Indicators per group for a period 分组指标（签收率、办结率、超期率、满意率、办结时长…）",
)
async def get_indicators(
    request: Request,
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
    principal: StaffPrincipal = Depends(reader),
) -> dict[str, Any]:
    if period is not None and (from_ is not None or to is not None):
        raise HTTPException(UNPROCESSABLE, "give either period or from/to, not both")
    if period is not None:
        p = _period(period)
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
    scope = Scope.of(principal)
    filters = Filters(
        unit=scope.narrow("unit", unit),
        township=scope.narrow("township", township),
        kind=kind,
        source=source,
        matter=matter,
        matter_group=matter_group,
    )
    moment = _as_of(p, as_of)
    async with _state(request).runtime.uow() as uow:
        rows, total = await grouped_indicators(
            session=uow.session, period=p, as_of=moment, group_by=keys, filters=filters
        )
        names = (
            await unit_names(session=uow.session, ids=[r["unit"] for r in rows if r.get("unit")])
            if "unit" in keys
            else {}
        )
    for row in rows:
        if "unit" in keys:
            row["unit_name"] = (names.get(row["unit"]) or {}).get("name")
        if "kind" in keys:
            row["kind_label"] = UNIT_KIND_LABELS.get(row["kind"] or "", None)
    return {
        "period": _period_json(p),
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
async def get_case_durations(
    request: Request, case_id: uuid.UUID, principal: StaffPrincipal = Depends(reader)
) -> dict[str, Any]:
    state = _state(request)
    async with state.runtime.uow() as uow:
        fact = await load_fact_row(session=uow.session, case_id=case_id)
    scope = Scope.of(principal)
    visible = fact is not None and (
        (scope.unit is None or scope.unit == fact["unit"] or scope.unit in (fact["cohandlers"] or []))
        and (scope.township is None or scope.township == fact["township"])
    )
    if fact is None or not visible:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case (or not in your scope)")
    now = _now()
    elapsed: dict[str, float] | None = None
    if fact["dispatched_at"] is not None and fact["resolved_at"] is None:
        elapsed = {
            "natural_hours": round(natural_hours_between(fact["dispatched_at"], now), 4),
            "working_hours": round(state.calendar.working_hours_between(fact["dispatched_at"], now), 4),
        }
    done = fact["resolved_at"] or fact["closed_at"]
    overdue_now = fact["deadline"] is not None and (done if done is not None else now) > fact["deadline"]
    return {
        "case_id": str(case_id),
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


# --------------------------------------------------------------------------- scores 评分与排名


@dataclass
class ScoresView:
    """A ranking as shown: published (signed-off period) or live, with the latest revision beside it."""

    scheme: AssessmentScheme
    """The scheme version the rows were scored with. 评分所用方案版本。"""
    period: Period
    as_of: str
    rows: list[dict[str, Any]]
    signed_off: dict[str, Any] | None
    revision: dict[str, Any] | None
    revised: dict[tuple[str, str], dict[str, Any]] | None
    """Latest revised row per (unit, township), when a revision exists. 最新修订行。"""

    def to_json(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        s = self.scheme
        return {
            "scheme": {"id": s.id, "version": s.version, "name": s.name, "kind": s.kind},
            "period": _period_json(self.period),
            "as_of": self.as_of,
            "signed_off": self.signed_off,
            "revision": self.revision,
            "rows": rows,
        }


_REVISED_FIELDS = ("status", "score", "partial_score", "grade", "rank_in_township", "rank_in_kind", "cases")


async def _scores(request: Request, scheme: AssessmentScheme, period: Period, as_of: datetime | None) -> ScoresView:
    """Published scores (signed-off period) or live ones, with the latest revision beside them."""
    revised: dict[tuple[str, str], dict[str, Any]] | None = None
    revision_info: dict[str, Any] | None = None
    signed: dict[str, Any] | None = None
    async with _state(request).runtime.uow() as uow:
        signoff = await signoff_of(session=uow.session, period_id=period.id)
        published = (signoff or {}).get("snapshot", {}).get(scheme.id)
        if signoff is not None and published is not None:
            used = AssessmentScheme.model_validate(published["scheme"])
            rows: list[dict[str, Any]] = list(published["rows"])
            moment: str = signoff["as_of"]
            signed = {"signed_at": signoff["signed_at"], "signed_by": signoff["signed_by"]}
            revision = await latest_revision(session=uow.session, period_id=period.id)
            if revision is not None:
                revised_rows = revision["snapshot"].get(scheme.id, {}).get("rows", [])
                revised = {(r["unit"], r["township"]): r for r in revised_rows}
                revision_info = {
                    "revision_no": revision["revision_no"],
                    "created_at": revision["created_at"],
                    "subjects": revision["subjects"],
                    # cumulative: the latest revision against the published figures 相对公布得分的全部变化
                    "changes": diff_rows(scheme.id, rows, revised_rows),
                }
        else:
            used = scheme
            at = _as_of(period, as_of)
            rows = [
                r.model_dump(mode="json")
                for r in await compute_scores(session=uow.session, scheme=scheme, period=period, as_of=at)
            ]
            moment = at.isoformat()
        names = await unit_names(session=uow.session, ids=sorted({r["unit"] for r in rows if not r.get("unit_name")}))
    for row in rows:
        row["unit_name"] = row.get("unit_name") or (names.get(row["unit"]) or {}).get("name")
        query = f"?township={quote(row['township'])}" if used.kind == "township_led" else ""
        row["cases_url"] = f"/v1/scores/{scheme.id}/{quote(period.id)}/{quote(row['unit'])}/cases{query}"
        if revised is not None:
            rev = revised.get((row["unit"], row["township"]))
            row["revised"] = {k: rev.get(k) for k in _REVISED_FIELDS} if rev is not None else None
    return ScoresView(used, period, moment, rows, signed, revision_info, revised)


def _filter_rows(
    rows: list[dict[str, Any]], scope: Scope, township: str | None, kind: str | None
) -> list[dict[str, Any]]:
    return [
        r
        for r in rows
        if scope.sees(r)
        and (township is None or r["township"] == township)
        and (kind is None or r["unit_kind"] == kind)
    ]


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
    request: Request,
    scheme_id: str,
    period_id: PeriodId,
    township: str | None = None,
    kind: str | None = None,
    as_of: datetime | None = None,
    principal: StaffPrincipal = Depends(reader),
) -> dict[str, Any]:
    period = _period(period_id)
    scheme = await _scheme_or_404(request, scheme_id)
    view = await _scores(request, scheme, period, as_of)
    return view.to_json(_filter_rows(view.rows, Scope.of(principal), township, kind))


@router.get(
    "/v1/scores/{scheme_id}/{period_id}/{unit}/cases",
    **documented(ScoreCases),
    tags=[TAG_SCORES],
    summary="The cases behind a unit's score 得分对应的案件（逐案贡献）",
)
async def get_score_cases(
    request: Request,
    scheme_id: str,
    period_id: PeriodId,
    unit: str,
    township: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    principal: StaffPrincipal = Depends(reader),
) -> dict[str, Any]:
    period = _period(period_id)
    await _scheme_or_404(request, scheme_id)
    scope = Scope.of(principal)
    unit = scope.narrow("unit", unit) or unit
    township = scope.narrow("township", township)
    async with _state(request).runtime.uow() as uow:
        signoff = await signoff_of(session=uow.session, period_id=period.id)
        moment = datetime.fromisoformat(signoff["as_of"]) if signoff else period.default_as_of(_now())
        total, cases = await case_contributions(
            session=uow.session, period=period, as_of=moment, unit=unit, township=township, limit=limit, offset=offset
        )
    return {
        "scheme": scheme_id,
        "period": _period_json(period),
        "as_of": moment.isoformat(),
        "unit": unit,
        "township": township,
        "total": total,
        "limit": limit,
        "offset": offset,
        "cases": cases,
        "note": "signed-off period: cases show today's facts; the published figures are frozen" if signoff else None,
    }


# --------------------------------------------------------------------------- sign-off 签发


@router.post(
    "/v1/periods/{period_id}/sign-off",
    tags=[TAG_SCORES],
    summary="Sign a period off 签发周期 (admin): freeze its published scores",
    status_code=201,
    **documented(SignedOff, status=201, extra={409: {"description": "period not ended yet, or signed off already"}}),
)
async def post_sign_off(
    request: Request, period_id: PeriodId, principal: StaffPrincipal = Depends(admin_only)
) -> JSONResponse:
    period = _period(period_id)
    try:
        async with _state(request).runtime.uow() as uow:
            result = await sign_off(session=uow.session, period=period, by=principal.token_name, now=_now())
    except (PeriodNotEndedError, AlreadySignedOffError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return JSONResponse(result, status_code=201)


@router.get(
    "/v1/periods/{period_id}",
    **documented(PeriodRecord),
    tags=[TAG_SCORES],
    summary="A period's sign-off and revisions 签发与修订记录",
)
async def get_period(request: Request, period_id: PeriodId, _: StaffPrincipal = Depends(reader)) -> dict[str, Any]:
    period = _period(period_id)
    async with _state(request).runtime.uow() as uow:
        signoff = await signoff_of(session=uow.session, period_id=period.id)
        revisions = await list_revisions(session=uow.session, period_id=period.id) if signoff else []
    signed = None
    if signoff is not None:
        signed = {k: signoff[k] for k in ("signed_at", "signed_by", "as_of", "dirty")}
        signed["schemes"] = {sid: part["scheme"]["version"] for sid, part in signoff["snapshot"].items()}
    return {"period": _period_json(period), "signed_off": signed, "revisions": revisions}


# --------------------------------------------------------------------------- exports 导出


@router.get(
    "/v1/export/{scheme_id}/{filename}",
    tags=[TAG_SCORES],
    summary="Export a ranking 导出考核结果: `{period}.csv` or `{period}.xlsx`",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, XLSX_MEDIA_TYPE: {}}}},
)
async def export_scores(
    request: Request,
    scheme_id: str,
    filename: str,
    township: str | None = None,
    kind: str | None = None,
    principal: StaffPrincipal = Depends(reader),
) -> Response:
    stem, dot, suffix = filename.rpartition(".")
    if not dot or suffix not in ("csv", "xlsx"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "export as {period}.csv or {period}.xlsx")
    period = _period(stem)
    scheme = await _scheme_or_404(request, scheme_id)
    view = await _scores(request, scheme, period, None)
    table = score_table(
        scheme=view.scheme,
        period_id=period.id,
        as_of=view.as_of,
        rows=_filter_rows(view.rows, Scope.of(principal), township, kind),
        signed_off=view.signed_off,
        revised=view.revised,
    )
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
async def post_recompute_durations(
    request: Request,
    only_provisional: bool = False,
    _: StaffPrincipal = Depends(admin_only),
) -> dict[str, Any]:
    state = _state(request)
    started = datetime.now(UTC)
    async with state.runtime.engine.begin() as conn:
        changed = await recompute_working_durations(
            conn=conn, calendar=state.calendar, only_provisional=only_provisional
        )
    seconds = (datetime.now(UTC) - started).total_seconds()
    return {"changed": changed, "seconds": round(seconds, 3), "only_provisional": only_provisional}
