"""Township ratings of stationed agencies 乡镇对派驻机构的评价 (以乡镇为主): entering one, reading them.

A township rates only a stationed agency 派驻机构 that serves it; a rating of a signed-off period
marks that period for a revision. The functions take the session by keyword and never commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.scheme_store import list_ratings, put_rating
from services.metrics.signoff import mark_period
from services.metrics.units import unit_names
from shared.visibility import MEMBER, Viewer

__all__ = ["RatingRefusedError", "rate_agency", "visible_ratings"]


class RatingRefusedError(ValueError):
    """The unit is no stationed agency, or does not serve the township. 不可评价该单位。"""


async def rate_agency(
    *,
    session: AsyncSession,
    period_id: str,
    township: str,
    unit: str,
    rating: float,
    note: str | None,
    by: str,
) -> list[str]:
    """Store ``township``'s rating of ``unit`` for the period; the signed-off periods it marked for revision.

    A unit the directory does not know yet is accepted as is. Raises :class:`RatingRefusedError`.
    录入乡镇评价；返回因此待复核的已签发周期。"""
    known = (await unit_names(session=session, ids=[unit])).get(unit)
    if known is not None and known.get("kind") not in (None, "stationed_agency"):
        raise RatingRefusedError(f"unit: {unit} is a {known['kind']}; townships rate stationed agencies 派驻机构 only")
    if known is not None and known.get("covers") and township not in known["covers"]:
        raise RatingRefusedError(f"township: {unit} does not serve township {township}")
    await put_rating(
        session=session, period_id=period_id, township=township, unit=unit, rating=rating, note=note, by=by
    )
    return await mark_period(session=session, period_id=period_id, subject=f"rating:{township}/{unit}")


async def visible_ratings(*, session: AsyncSession, period_id: str, viewer: Viewer) -> list[dict[str, Any]]:
    """The period's ratings ``viewer`` may see (their township's; a unit: its own). 范围内的乡镇评价。"""
    if viewer.role == MEMBER:  # a member token sees its own tasks only 队员账号不见评价
        return []
    rows = await list_ratings(session=session, period_id=period_id, township=viewer.only_township)
    own_unit = viewer.only_unit
    return [r for r in rows if own_unit is None or r["unit"] == own_unit]
