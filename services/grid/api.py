"""The grid service's HTTP routes (辖区登记接口).

Writes (admin token): ``PUT /v1/jurisdiction`` imports a whole county bundle;
``PUT /v1/counties/{code}/rules`` replaces its override rules. Reads (any staff
token): export, locate, browse divisions/units/matters/rules, version history.
Reads of the current state come from the in-memory snapshots; history comes from
the database.

写操作（管理员令牌）：导入整县数据包、替换派遣规则。读操作（任一工作人员令牌）：
导出、点位定位、浏览区划/单位/事项/规则、版本历史。当前状态读自内存快照，历史读自数据库。
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
import shapely
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter

from services.grid.answers import (
    Bundle,
    BundleImported,
    Counties,
    CountyDetail,
    CurrentRules,
    DivisionDetail,
    Divisions,
    Located,
    Matters,
    RuleHistory,
    RuleSet,
    RulesReplaced,
    Units,
)
from services.grid.registry import SnapshotRegistry
from services.grid.service import (
    ChangeOutcome,
    CountyNotFoundError,
    RulesInvalidError,
    export_document,
    get_bundle_version,
    get_county,
    get_rule_set,
    import_bundle,
    list_bundle_versions,
    list_counties,
    list_rule_sets,
    refresh_registry,
    replace_rules,
    utc_now,
)
from services.grid.settings import GridSettings
from shared.answers import documented
from shared.auth import Admin, Staff
from shared.errors import MAX_INT32
from shared.geo import Crs, to_wgs84
from shared.jurisdiction import (
    Division,
    JurisdictionBundle,
    JurisdictionSnapshot,
    Problem,
    bundle_digest,
    parse_bundle,
    parse_rules,
)
from shared.service import ServiceRuntime
from shared.vocabulary import DivisionLevel, UnitKind

router = APIRouter()

TAG_REGISTRY = "jurisdiction 辖区登记"
TAG_BROWSE = "browse 浏览"
TAG_LOCATE = "locate 点位定位"

CountyCode = Annotated[str, Path(pattern=r"^\d{6}$", description="6-digit county code 县级区划代码")]
CountyQuery = Annotated[
    str | None,
    Query(pattern=r"^\d{6}$", description="county code 区县编码; optional when only one county is loaded"),
]


# --------------------------------------------------------------------------- dependencies / 依赖


@dataclass(frozen=True, slots=True)
class GridContext:
    """What the grid routes share 路由共享的状态: the runtime, the snapshot registry, settings, the change counter."""

    runtime: ServiceRuntime
    registry: SnapshotRegistry
    settings: GridSettings
    changes: Counter

    def count(self, kind: str, outcome: str) -> None:
        """Count a bundle import or rule replacement by outcome. 变更计数。"""
        self.changes.labels(kind, outcome).inc()


async def grid_context(request: Request) -> GridContext:
    """The app's :class:`GridContext` (dependency). 应用状态。"""
    state = request.app.state
    return GridContext(
        runtime=state.runtime, registry=state.registry, settings=state.settings, changes=state.change_counter
    )


#: Route parameter type for the grid app's shared state: ``grid: Grid``.
Grid = Annotated[GridContext, Depends(grid_context)]


# --------------------------------------------------------------------------- helpers / 辅助


def _correlation_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id") or uuid.uuid4())


def _rejected(detail: str, problems: list[Problem]) -> JSONResponse:
    """422 with every problem. 422 并列出全部问题。"""
    return JSONResponse(
        {"detail": detail, "problems": [p.to_dict() for p in problems]},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _json_body(request: Request, limit: int) -> tuple[Any, list[Problem]]:
    """The request body as JSON (at most ``limit`` bytes), or a problem saying why it is not. 读取 JSON 请求体。"""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body of {length} bytes exceeds {limit} bytes")
    raw = await request.body()
    if len(raw) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body exceeds {limit} bytes")
    try:
        return orjson.loads(raw), []
    except orjson.JSONDecodeError as exc:
        return None, [Problem("$", f"body is not valid JSON: {exc}")]


async def _snapshot_for(grid: GridContext, county: str | None) -> JurisdictionSnapshot:
    """The current snapshot of ``county`` (default: the only county loaded).

    区县当前快照（未指定时取唯一已加载的区县）。On a miss the registry is refreshed
    from the database once (an import made by another replica). 未命中时从数据库刷新一次。
    """
    registry = grid.registry
    if (county is None and len(registry) != 1) or (county is not None and county not in registry):
        async with grid.runtime.uow() as uow:
            await refresh_registry(session=uow.session, registry=registry)
    if county is None:
        codes = registry.codes()
        if not codes:
            raise HTTPException(status.HTTP_404_NOT_FOUND, _NOTHING_LOADED)
        if len(codes) > 1:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"several counties are loaded ({', '.join(codes)}): pass ?county= 请指定区县",
            )
        county = codes[0]
    snapshot = registry.get(county)
    if snapshot is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _no_county(county))
    return snapshot


_NOTHING_LOADED = (
    "no county jurisdiction is loaded yet: PUT /v1/jurisdiction first "
    "(python -m services.grid.load_demo) 尚未导入任何区县辖区"
)


def _no_county(code: str) -> str:
    return f"county {code} has no jurisdiction 该区县尚未导入辖区"


def _rules_detail(n: int) -> str:
    return f"rule set rejected: {n} problem(s); nothing changed 规则集有误，未作变更"


def _division_ref(d: Division) -> dict[str, Any]:
    return {"code": d.code, "name": d.name, "level": d.level, "parent_code": d.parent_code}


def _named(snapshot: JurisdictionSnapshot, code: str | None) -> dict[str, str] | None:
    if code is None:
        return None
    division = snapshot.division(code)
    return {"code": code, "name": division.name if division is not None else ""}


def _change_body(outcome: ChangeOutcome) -> dict[str, Any]:
    return {**outcome.state.to_dict(), "changed": outcome.changed}


def _counts(bundle: JurisdictionBundle) -> dict[str, int]:
    levels: dict[str, int] = {"county": 0, "township": 0, "village": 0, "grid": 0}
    for feature in bundle.divisions.features:
        levels[feature.properties.level] += 1
    return {
        **{f"{lvl}s" if lvl != "county" else "counties": n for lvl, n in levels.items()},
        "units": len(bundle.units),
        "matters": len(bundle.matters),
        "rules": len(bundle.rules),
    }


def _orjson(data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), media_type="application/json", headers=headers)


_WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown token 缺少或未知令牌"},
    403: {"description": "not an admin token 非管理员令牌"},
    413: {"description": "body too large 请求体过大"},
    422: {"description": "rejected as a whole 整体拒绝: `{detail, problems: [{path, message}]}` lists every problem"},
    503: {"description": "database unavailable (Retry-After) 数据库暂不可用"},
}


# --------------------------------------------------------------------------- import / export 导入导出


@router.put(
    "/v1/jurisdiction",
    tags=[TAG_REGISTRY],
    summary="Import a county's whole jurisdiction bundle 导入整县辖区数据包 (admin)",
    description="Body: the bundle, in the format `GET /v1/jurisdiction` exports (described in the team's domain "
    "notes). Replaces that county's jurisdiction; other counties are untouched. The same content again answers "
    "`changed: false` with the existing version. "
    "A bundle with problems is rejected whole (422, every problem with its path); nothing changes. "
    "Each import bumps `version` and `rules_version` and publishes `jurisdiction.changed` (change=bundle).",
    **documented(BundleImported, extra=_WRITE_RESPONSES),
)
async def put_jurisdiction(request: Request, grid: Grid, principal: Admin) -> JSONResponse:
    data, problems = await _json_body(request, grid.settings.max_bundle_bytes)
    if problems:
        grid.count("bundle", "rejected")
        return _rejected("the body is not JSON; nothing was imported 请求体不是 JSON，未导入", problems)

    def check() -> tuple[JurisdictionBundle | None, list[Problem], str]:
        bundle, found = parse_bundle(data)
        return bundle, found, (bundle_digest(bundle) if bundle is not None and not found else "")

    bundle, problems, digest = await asyncio.to_thread(check)
    if bundle is None or problems:
        grid.count("bundle", "rejected")
        return _rejected(
            f"bundle rejected: {len(problems)} problem(s); nothing was imported 数据包有误，整体拒绝，未作任何变更",
            problems,
        )
    async with grid.runtime.uow() as uow:
        outcome = await import_bundle(
            session=uow.session,
            bundle=bundle,
            digest=digest,
            actor=principal.token_name or principal.role,
            correlation_id=_correlation_id(request),
            now=utc_now(),
        )
    if outcome.snapshot is not None:
        grid.registry.put(outcome.snapshot)  # after the commit / 提交之后再切换
    grid.count("bundle", "changed" if outcome.changed else "unchanged")
    return JSONResponse({**_change_body(outcome), "counts": _counts(bundle)})


@router.get(
    "/v1/jurisdiction",
    **documented(Bundle, 404),
    tags=[TAG_REGISTRY],
    summary="Export a county's jurisdiction bundle 导出辖区数据包",
    description="The same format `PUT /v1/jurisdiction` takes, so export → import is a round trip "
    "(`changed: false`). Without `version`: the current bundle with the current rules; with `version`: "
    "that stored bundle version with the rules it was imported with. Headers: `ETag` (digest), "
    "`X-Jurisdiction-Version`, `X-Rules-Version`.",
)
async def get_jurisdiction(
    grid: Grid,
    _: Staff,
    county: CountyQuery = None,
    version: Annotated[
        int | None, Query(ge=1, le=MAX_INT32, description="a stored bundle version 历史数据包版本")
    ] = None,
) -> Response:
    if version is None:
        snapshot = await _snapshot_for(grid, county)
        bundle = snapshot.bundle()
        digest = await asyncio.to_thread(lambda: snapshot.digest)
        document = export_document(bundle, snapshot.version)
        headers = {
            "ETag": f'"{digest}"',
            "X-Jurisdiction-Version": str(snapshot.version),
            "X-Rules-Version": str(snapshot.rules_version),
        }
        return _orjson(document, headers)
    code = county or (await _snapshot_for(grid, None)).county_code
    async with grid.runtime.uow() as uow:
        stored = await get_bundle_version(session=uow.session, county_code=code, version=version)
    if stored is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"county {code} has no bundle version {version}")
    digest = await asyncio.to_thread(bundle_digest, stored)
    return _orjson(export_document(stored, version), {"ETag": f'"{digest}"', "X-Jurisdiction-Version": str(version)})


# --------------------------------------------------------------------------- counties & rules 区县与规则


@router.get("/v1/counties", **documented(Counties), tags=[TAG_REGISTRY], summary="Counties in the registry 已登记区县")
async def get_counties(grid: Grid, _: Staff) -> dict[str, Any]:
    async with grid.runtime.uow() as uow:
        states = await list_counties(session=uow.session)
    return {"counties": [s.to_dict() for s in states]}


@router.get(
    "/v1/counties/{code}",
    **documented(CountyDetail),
    tags=[TAG_REGISTRY],
    summary="A county: current versions and history 区县当前版本与历史",
)
async def get_county_detail(grid: Grid, code: CountyCode, _: Staff) -> dict[str, Any]:
    async with grid.runtime.uow() as uow:
        state = await get_county(session=uow.session, county_code=code)
        if state is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, _no_county(code))
        versions = await list_bundle_versions(session=uow.session, county_code=code)
        rule_history = await list_rule_sets(session=uow.session, county_code=code)
    return {**state.to_dict(), "bundle_versions": versions, "rule_sets": rule_history}


@router.put(
    "/v1/counties/{code}/rules",
    tags=[TAG_REGISTRY],
    summary="Replace a county's override rules 替换派遣规则 (admin)",
    description='Body: the rule list (or `{"rules": [...]}`), format as the bundle\'s `rules`. Validated against '
    "the county's current bundle; any problem rejects the whole set (422, every problem). Stored as a new "
    "rule-set version (old versions stay retrievable); publishes `jurisdiction.changed` (change=rules). "
    "The same rules again answer `changed: false`.",
    **documented(RulesReplaced, extra={**_WRITE_RESPONSES, 404: {"description": "unknown county 区县未登记"}}),
)
async def put_rules(request: Request, grid: Grid, code: CountyCode, principal: Admin) -> JSONResponse:
    data, problems = await _json_body(request, grid.settings.max_bundle_bytes)
    if not problems and isinstance(data, dict):
        if "rules" not in data:
            problems = [Problem("$", 'expected a list of rules or an object {"rules": [...]}')]
        data = data.get("rules")
    rules = None
    if not problems:
        rules, problems = parse_rules(data)
    if rules is None or problems:
        grid.count("rules", "rejected")
        return _rejected(_rules_detail(len(problems)), problems)
    try:
        async with grid.runtime.uow() as uow:
            outcome = await replace_rules(
                session=uow.session,
                county_code=code,
                rules=rules,
                registry=grid.registry,
                actor=principal.token_name or principal.role,
                correlation_id=_correlation_id(request),
                now=utc_now(),
            )
    except CountyNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _no_county(code)) from None
    except RulesInvalidError as exc:
        grid.count("rules", "rejected")
        return _rejected(_rules_detail(len(exc.problems)), exc.problems)
    if outcome.snapshot is not None:
        grid.registry.put(outcome.snapshot)
    grid.count("rules", "changed" if outcome.changed else "unchanged")
    return JSONResponse({**_change_body(outcome), "rules": len(rules)})


@router.get(
    "/v1/counties/{code}/rules",
    **documented(RuleHistory),
    tags=[TAG_REGISTRY],
    summary="Rule-set history 规则集版本历史",
)
async def get_rule_history(grid: Grid, code: CountyCode, _: Staff) -> dict[str, Any]:
    async with grid.runtime.uow() as uow:
        history = await list_rule_sets(session=uow.session, county_code=code)
    if not history:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _no_county(code))
    return {"county_code": code, "rule_sets": history}


@router.get(
    "/v1/counties/{code}/rules/{version}",
    **documented(RuleSet),
    tags=[TAG_REGISTRY],
    summary="One stored rule-set version 某一规则集版本",
)
async def get_rule_version(
    grid: Grid,
    code: CountyCode,
    version: Annotated[int, Path(ge=1, le=MAX_INT32)],
    _: Staff,
) -> dict[str, Any]:
    async with grid.runtime.uow() as uow:
        rule_set = await get_rule_set(session=uow.session, county_code=code, rules_version=version)
    if rule_set is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"county {code} has no rule-set version {version}")
    return rule_set


@router.get(
    "/v1/rules", **documented(CurrentRules, 404), tags=[TAG_BROWSE], summary="Current override rules 当前派遣规则"
)
async def get_rules(grid: Grid, _: Staff, county: CountyQuery = None) -> Response:
    snapshot = await _snapshot_for(grid, county)
    return _orjson(
        {
            "county_code": snapshot.county_code,
            "version": snapshot.version,
            "rules_version": snapshot.rules_version,
            "rules": [r.model_dump(mode="json", exclude_none=True) for r in snapshot.rules],
        }
    )


# --------------------------------------------------------------------------- locate 定位


@router.get(
    "/v1/locate",
    tags=[TAG_LOCATE],
    summary="Which grid holds a point 点位所在网格",
    description="Converts GCJ-02 (火星坐标) / BD-09 (百度坐标) to WGS-84 first. Answers the grid, village, "
    "township and county (codes and names). A point outside every grid → 404, unless `fallback=true`, "
    "which accepts the village or township polygon that holds it.",
    **documented(
        Located,
        extra={404: {"description": "outside every grid 不在任何网格内"}, 422: {"description": "invalid lng/lat/crs"}},
    ),
)
async def locate(
    grid: Grid,
    _: Staff,
    lng: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False, description="longitude 经度")],
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="latitude 纬度")],
    crs: Annotated[Crs, Query(description="wgs84 | gcj02 | bd09 | cgcs2000")] = "wgs84",
    fallback: Annotated[bool, Query(description="accept a village/township answer 允许退至村/镇")] = False,
) -> dict[str, Any]:
    x, y = to_wgs84(lng, lat, crs)
    registry = grid.registry
    if not len(registry):  # nothing loaded here yet: look in the database once / 尚未加载：查一次数据库
        async with grid.runtime.uow() as uow:
            await refresh_registry(session=uow.session, registry=registry)
    found = registry.locate(x, y)
    where = f"({lng}, {lat}) {crs}" + (f" = ({x:.7f}, {y:.7f}) wgs84" if crs not in ("wgs84", "cgcs2000") else "")
    counties = ", ".join(registry.codes())
    if not counties:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _NOTHING_LOADED)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"point {where} is outside every grid of the loaded counties ({counties}) 该点不在任何网格内",
        )
    snapshot, result = found
    if result.level != "grid" and not fallback:
        finest = snapshot.division(result.code)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"point {where} is outside every grid; it lies in {result.level} {result.code} "
            f"{finest.name if finest else ''} (pass fallback=true to accept that) 该点不在任何网格内",
        )
    return {
        "lng": lng,
        "lat": lat,
        "crs": crs,
        "wgs84": {"lng": x, "lat": y},
        "level": result.level,
        "grid": _named(snapshot, result.grid),
        "village": _named(snapshot, result.village),
        "township": _named(snapshot, result.township),
        "county": _named(snapshot, result.county) or {"code": snapshot.county_code, "name": snapshot.name},
        "version": snapshot.version,
        "rules_version": snapshot.rules_version,
    }


# --------------------------------------------------------------------------- browse 浏览


@router.get(
    "/v1/divisions", **documented(Divisions, 404), tags=[TAG_BROWSE], summary="List divisions 区划列表 (no geometry)"
)
async def get_divisions(
    grid: Grid,
    _: Staff,
    county: CountyQuery = None,
    level: Annotated[DivisionLevel | None, Query(description="county | township | village | grid")] = None,
    parent: Annotated[str | None, Query(pattern=r"^\d{6,20}$", description="direct children of 直接下级")] = None,
) -> dict[str, Any]:
    snapshot = await _snapshot_for(grid, county)
    items = snapshot.children(parent) if parent is not None else snapshot.divisions(level)
    return {
        "county_code": snapshot.county_code,
        "version": snapshot.version,
        "divisions": [_division_ref(d) for d in items if level is None or d.level == level],
    }


@router.get(
    "/v1/divisions/{code}",
    **documented(DivisionDetail),
    tags=[TAG_BROWSE],
    summary="A division, its parent chain and children 区划详情（上级链与下级）",
)
async def get_division(
    grid: Grid,
    code: Annotated[str, Path(pattern=r"^\d{6,20}$")],
    _: Staff,
    geometry: Annotated[bool, Query(description="include the GeoJSON geometry 是否返回边界")] = True,
) -> Response:
    registry = grid.registry
    snapshot = registry.county_of_division(code)
    if snapshot is None:
        async with grid.runtime.uow() as uow:
            await refresh_registry(session=uow.session, registry=registry)
        snapshot = registry.county_of_division(code)
    division = snapshot.division(code) if snapshot is not None else None
    if snapshot is None or division is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no division {code} in any loaded county 未找到该区划")
    body: dict[str, Any] = {
        "county_code": snapshot.county_code,
        "version": snapshot.version,
        **_division_ref(division),
        "parents": [_division_ref(d) for d in snapshot.ancestors(code)],
        "children": [_division_ref(d) for d in snapshot.children(code)],
    }
    if geometry:
        geom = division.geometry
        body["geometry"] = json.loads(shapely.to_geojson(geom)) if geom is not None else None
    return _orjson(body)


@router.get("/v1/units", **documented(Units, 404), tags=[TAG_BROWSE], summary="Handling units 承办单位")
async def get_units(
    grid: Grid,
    _: Staff,
    county: CountyQuery = None,
    township: Annotated[
        str | None, Query(pattern=r"^\d{9}$", description="belonging to or covering 所属或派驻覆盖的镇街")
    ] = None,
    kind: Annotated[UnitKind | None, Query()] = None,
) -> Response:
    snapshot = await _snapshot_for(grid, county)
    return _orjson(
        {
            "county_code": snapshot.county_code,
            "version": snapshot.version,
            "units": [u.model_dump(mode="json") for u in snapshot.units(kind=kind, township=township)],
        }
    )


@router.get(
    "/v1/matters",
    **documented(Matters, 404),
    tags=[TAG_BROWSE],
    summary="The matter catalogue 事项清单 (with devolution 下放)",
)
async def get_matters(
    grid: Grid,
    _: Staff,
    county: CountyQuery = None,
    township: Annotated[
        str | None, Query(pattern=r"^\d{9}$", description="only matters devolved to 仅下放至该镇街的事项")
    ] = None,
) -> Response:
    snapshot = await _snapshot_for(grid, county)
    townships = [d.code for d in snapshot.divisions("township")]
    matters = []
    now = utc_now()
    for matter in snapshot.matters:
        # Devolved (下放) or entrusted (委托) today, by the dated list. 今日有效的下放或委托。
        in_force = {t: snapshot.devolution_at(t, matter.code, now) for t in townships}
        devolved_to = [t for t, e in in_force.items() if e is not None and e.mode != "assist"]
        if township is not None and township not in devolved_to:
            continue
        matters.append({**matter.model_dump(mode="json"), "devolved_to": devolved_to})
    return _orjson({"county_code": snapshot.county_code, "version": snapshot.version, "matters": matters})
