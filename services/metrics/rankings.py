"""Rankings as shown 考核排名: published (signed-off period) or live scores, and the cases behind a score.

A signed-off period 已签发周期 answers its frozen snapshot (the scheme version it was scored with),
with the latest revision 修订 beside each row; an open one is scored now
(:func:`services.metrics.scheme_store.compute_scores`). The functions take the session by keyword and
never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.access import narrowed
from services.metrics.periods import Period, evaluation_moment
from services.metrics.populations import population_clauses
from services.metrics.queries import case_contributions
from services.metrics.scheme_store import compute_scores, find_scheme
from services.metrics.scoring import AssessmentScheme
from services.metrics.signoff import diff_rows, latest_revision, signoff_of
from services.metrics.units import unit_names
from shared.visibility import Viewer

__all__ = ["ScoreCases", "ScoresView", "ranking", "score_cases"]

_REVISED_FIELDS = ("status", "score", "partial_score", "grade", "rank_in_township", "rank_in_kind", "cases")


@dataclass
class ScoresView:
    """A ranking as shown: published (signed-off period) or live, with the latest revision beside it."""

    active: AssessmentScheme
    """The scheme asked for, in its active version. 所查询方案（生效版本）。"""
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
            "period": self.period.as_json(),
            "as_of": self.as_of,
            "signed_off": self.signed_off,
            "revision": self.revision,
            "rows": rows,
        }


async def ranking(
    *, session: AsyncSession, scheme_id: str, period: Period, as_of: datetime | None, now: datetime
) -> ScoresView:
    """Published scores (signed-off period) or live ones as of ``as_of``, with the latest revision beside them.

    Raises :class:`~services.metrics.scheme_store.UnknownSchemeError` and, for a live ranking only,
    :class:`~services.metrics.periods.MomentError`. 已签发周期取公布得分，否则实时评分。"""
    scheme = await find_scheme(session=session, scheme_id=scheme_id)
    revised: dict[tuple[str, str], dict[str, Any]] | None = None
    revision_info: dict[str, Any] | None = None
    signed: dict[str, Any] | None = None
    signoff = await signoff_of(session=session, period_id=period.id)
    published = (signoff or {}).get("snapshot", {}).get(scheme.id)
    if signoff is not None and published is not None:
        used = AssessmentScheme.model_validate(published["scheme"])
        rows: list[dict[str, Any]] = list(published["rows"])
        moment: str = signoff["as_of"]
        signed = {"signed_at": signoff["signed_at"], "signed_by": signoff["signed_by"]}
        revision = await latest_revision(session=session, period_id=period.id)
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
        at = evaluation_moment(period, as_of, now=now)
        scored = await compute_scores(session=session, scheme=scheme, period=period, as_of=at)
        rows = [r.model_dump(mode="json") for r in scored]
        moment = at.isoformat()
    names = await unit_names(session=session, ids=sorted({r["unit"] for r in rows if not r.get("unit_name")}))
    for row in rows:
        row["unit_name"] = row.get("unit_name") or (names.get(row["unit"]) or {}).get("name")
        query = f"?township={quote(row['township'])}" if used.per_township else ""
        row["cases_url"] = f"/v1/scores/{scheme.id}/{quote(period.id)}/{quote(row['unit'])}/cases{query}"
        if revised is not None:
            rev = revised.get((row["unit"], row["township"]))
            row["revised"] = {k: rev.get(k) for k in _REVISED_FIELDS} if rev is not None else None
    return ScoresView(scheme, used, period, moment, rows, signed, revision_info, revised)


@dataclass(frozen=True, slots=True)
class ScoreCases:
    """The cases behind one unit's score 得分对应的案件, one page of them."""

    unit: str
    township: str | None
    as_of: datetime
    total: int
    cases: list[dict[str, Any]]
    signed_off: bool


async def score_cases(
    *,
    session: AsyncSession,
    viewer: Viewer,
    scheme_id: str,
    period: Period,
    unit: str,
    township: str | None,
    limit: int,
    offset: int,
    now: datetime,
) -> ScoreCases:
    """The cases behind ``unit``'s score in ``period`` (a signed-off period: as of its sign-off).

    Raises :class:`~services.metrics.scheme_store.UnknownSchemeError` and
    :class:`~services.metrics.access.OutOfScopeError`. 逐案贡献（已签发周期以签发时点为准）。"""
    scheme = await find_scheme(session=session, scheme_id=scheme_id)
    unit = narrowed(viewer, "unit", unit) or unit
    township = narrowed(viewer, "township", township)
    signoff = await signoff_of(session=session, period_id=period.id)
    moment = datetime.fromisoformat(signoff["as_of"]) if signoff else period.default_as_of(now)
    total, cases = await case_contributions(
        session=session,
        period=period,
        as_of=moment,
        unit=unit,
        township=township,
        limit=limit,
        offset=offset,
        extra=population_clauses(scheme.population),
    )
    return ScoreCases(unit, township, moment, total, cases, bool(signoff))
