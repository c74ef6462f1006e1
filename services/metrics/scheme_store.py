"""Schemes, ratings and scores in the database 考核方案、乡镇评价与评分.

* Schemes 考核方案 are versioned configuration: ``deploy/assessment/*.yaml`` is loaded at start
  (:func:`sync_scheme_files`), ``PUT /v1/schemes/{id}`` adds a new version
  (:func:`put_scheme`). A stored (id, version) is never changed; the highest version is the
  active one. 版本一经保存不再修改，最高版本为生效版本。
* Ratings 乡镇评价: a township's 0–100 rating of a stationed agency for one period.
* Scores 评分: :func:`compute_scores` = one grouped SQL query (:func:`queries.score_counts`)
  + the pure :func:`score_units` on the small result.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, get_args

from pydantic import ValidationError
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.models import ratings, schemes
from services.metrics.periods import Period
from services.metrics.populations import population_clauses
from services.metrics.queries import score_counts
from services.metrics.scoring import AssessmentScheme, IndicatorRow, ScoreRow, score_units
from shared.logging import get_logger
from shared.vocabulary import UnitKind

log = get_logger(__name__)

__all__ = [
    "SchemeConflictError",
    "UnknownSchemeError",
    "active_schemes",
    "compute_scores",
    "find_scheme",
    "get_scheme",
    "list_ratings",
    "put_rating",
    "put_scheme",
    "ratings_for",
    "scheme_versions",
    "sync_scheme_files",
]

_UNIT_KINDS: Final = frozenset(get_args(UnitKind))


class SchemeConflictError(ValueError):
    """A scheme version that may not be stored (already exists, or not newer). 方案版本冲突。"""


class UnknownSchemeError(LookupError):
    """No such scheme (or no such version of it); the message names the known ones. 方案不存在。"""


async def sync_scheme_files(*, session: AsyncSession, loaded: dict[str, AssessmentScheme]) -> list[str]:
    """Store the file schemes not stored yet; returns warnings (a stored version differs).

    将文件中的方案写入数据库（已存在的版本不覆盖；内容不同则告警，需提升版本号）。
    """
    warnings: list[str] = []
    for scheme in loaded.values():
        body = scheme.model_dump(mode="json")
        existing = (
            await session.execute(
                select(schemes.c.body).where(schemes.c.scheme_id == scheme.id, schemes.c.version == scheme.version)
            )
        ).scalar_one_or_none()
        if existing is not None:
            if existing != body:
                warnings.append(
                    f"scheme {scheme.key}: the file differs from the stored version; stored kept "
                    "(give the edited file a new version 修改方案请提升版本号)"
                )
            continue
        await session.execute(
            pg_insert(schemes)
            .values(scheme_id=scheme.id, version=scheme.version, body=body, origin="file", created_by="file")
            .on_conflict_do_nothing()
        )
        await _activate_latest(session=session, scheme_id=scheme.id)
    for warning in warnings:
        log.warning(warning)
    return warnings


async def _activate_latest(*, session: AsyncSession, scheme_id: str) -> None:
    latest = (
        await session.execute(select(func.max(schemes.c.version)).where(schemes.c.scheme_id == scheme_id))
    ).scalar_one()
    await session.execute(
        update(schemes).where(schemes.c.scheme_id == scheme_id).values(active=schemes.c.version == latest)
    )


async def active_schemes(*, session: AsyncSession) -> dict[str, AssessmentScheme]:
    """Every scheme's active version, by id. 各方案的生效版本。"""
    rows = (
        await session.execute(select(schemes.c.body).where(schemes.c.active.is_(True)).order_by(schemes.c.scheme_id))
    ).scalars()
    out = {}
    for body in rows:
        scheme = AssessmentScheme.model_validate(body)
        out[scheme.id] = scheme
    return out


async def get_scheme(*, session: AsyncSession, scheme_id: str, version: int | None = None) -> AssessmentScheme | None:
    """A scheme's active version, or a given version. 取方案（生效版本或指定版本）。"""
    stmt = select(schemes.c.body).where(schemes.c.scheme_id == scheme_id)
    stmt = stmt.where(schemes.c.version == version) if version is not None else stmt.where(schemes.c.active.is_(True))
    body = (await session.execute(stmt)).scalar_one_or_none()
    return None if body is None else AssessmentScheme.model_validate(body)


async def find_scheme(*, session: AsyncSession, scheme_id: str, version: int | None = None) -> AssessmentScheme:
    """:func:`get_scheme`, or :class:`UnknownSchemeError` naming the active schemes. 取方案，不存在则报错。"""
    scheme = await get_scheme(session=session, scheme_id=scheme_id, version=version)
    if scheme is None:
        known = sorted(await active_schemes(session=session))
        what = f"scheme {scheme_id!r}" + (f" version {version}" if version is not None else "")
        raise UnknownSchemeError(f"unknown {what}; known schemes: {', '.join(known)}")
    return scheme


async def scheme_versions(*, session: AsyncSession, scheme_id: str) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            select(schemes.c.version, schemes.c.active, schemes.c.origin, schemes.c.created_by, schemes.c.created_at)
            .where(schemes.c.scheme_id == scheme_id)
            .order_by(schemes.c.version)
        )
    ).mappings()
    return [{**dict(r), "created_at": r["created_at"].isoformat()} for r in rows]


async def put_scheme(*, session: AsyncSession, scheme_id: str, body: dict[str, Any], by: str) -> AssessmentScheme:
    """Validate and store a new version of a scheme; it becomes the active one. 新增方案版本。

    ``version`` may be omitted (→ latest + 1); if given it must be above the latest.
    Raises :class:`pydantic.ValidationError` (bad scheme) or :class:`SchemeConflictError`.
    """
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"metrics-scheme:{scheme_id}"}
    )
    latest = (
        await session.execute(select(func.max(schemes.c.version)).where(schemes.c.scheme_id == scheme_id))
    ).scalar_one()
    data = dict(body)
    data.setdefault("id", scheme_id)
    if data.get("version") is None:
        data["version"] = (latest or 0) + 1
    # raises ValidationError naming the field; a new version may not rank 派驻机构 outside township-led
    scheme = AssessmentScheme.model_validate(data, context={"new_version": True})
    if scheme.id != scheme_id:
        raise SchemeConflictError(f"id: the body's id {scheme.id!r} differs from the path's {scheme_id!r}")
    if latest is not None and scheme.version <= latest:
        raise SchemeConflictError(
            f"version: scheme {scheme_id} is at version {latest}; a new version must be above it "
            f"(omit version to get {latest + 1})"
        )
    await session.execute(
        pg_insert(schemes).values(
            scheme_id=scheme.id,
            version=scheme.version,
            body=scheme.model_dump(mode="json"),
            origin="api",
            created_by=by,
        )
    )
    await _activate_latest(session=session, scheme_id=scheme.id)
    return scheme


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic errors as FastAPI-style ``detail`` items under ``body``. 校验错误列表。"""
    return [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors(include_url=False)]


# --------------------------------------------------------------------------- ratings 乡镇评价


async def put_rating(
    *,
    session: AsyncSession,
    period_id: str,
    township: str,
    unit: str,
    rating: float,
    note: str | None,
    by: str,
) -> None:
    stmt = pg_insert(ratings).values(
        period_id=period_id, township=township, unit=unit, rating=rating, note=note, rated_by=by
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[ratings.c.period_id, ratings.c.township, ratings.c.unit],
        set_={"rating": rating, "note": note, "rated_by": by, "rated_at": func.now()},
    )
    await session.execute(stmt)


async def ratings_for(*, session: AsyncSession, period_id: str) -> dict[tuple[str, str], float]:
    rows = (
        await session.execute(
            select(ratings.c.township, ratings.c.unit, ratings.c.rating).where(ratings.c.period_id == period_id)
        )
    ).all()
    return {(r.township, r.unit): float(r.rating) for r in rows}


async def list_ratings(*, session: AsyncSession, period_id: str, township: str | None) -> list[dict[str, Any]]:
    stmt = select(ratings).where(ratings.c.period_id == period_id).order_by(ratings.c.township, ratings.c.unit)
    if township is not None:
        stmt = stmt.where(ratings.c.township == township)
    return [{**dict(r), "rated_at": r["rated_at"].isoformat()} for r in (await session.execute(stmt)).mappings().all()]


# --------------------------------------------------------------------------- scores 评分


async def compute_scores(
    *, session: AsyncSession, scheme: AssessmentScheme, period: Period, as_of: datetime
) -> list[ScoreRow]:
    """Score and rank every covered unit for a period, as of ``as_of``. 计算某周期的评分与排名。

    Standard schemes score a unit once (its township: grid's, else its cases' one township,
    else ``*``); the township-led scheme (and one ``by_township``) scores a unit per township it
    served. Only the scheme's population counts (two-way assessment: ``whistled``, ``devolved``). Units of
    unknown kind cannot be matched to a scheme and are left out.
    """
    township_led = scheme.kind == "township_led"
    grouped = await score_counts(
        session=session,
        period=period,
        as_of=as_of,
        by_township=scheme.per_township,
        extra=population_clauses(scheme.population),
    )
    rows = [
        IndicatorRow(
            unit=g["unit"], unit_kind=g["kind"], township=g["township"], counts=g["counts"], unit_name=g["name"]
        )
        for g in grouped
        if g["kind"] in _UNIT_KINDS and g["kind"] in scheme.ranked_kinds
    ]
    rating_map = await ratings_for(session=session, period_id=period.id) if township_led else {}
    return score_units(rows, scheme, rating_map)
