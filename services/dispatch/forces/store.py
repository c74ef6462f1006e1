"""力量调度's reads and writes (no commits: the caller's unit of work commits). 力量调度读写。

The people document (replace per county), busy/free, positions (latest per member + track, one
statement per batch), and the reads the suggestion needs: a unit's members and teams, their status,
latest positions and open tasks in hand. 人员文档、忙闲、位置（每批一条语句）与建议所需的读取。
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.case_model import CaseState
from services.dispatch.forces.availability import MemberStatus
from services.dispatch.forces.people import ForcesDocument
from services.dispatch.forces.positions import Fix
from services.dispatch.forces.tables import (
    force_documents,
    force_members,
    force_positions,
    force_status,
    force_teams,
    force_tracks,
)
from services.dispatch.models import cases

__all__ = [
    "MemberRow",
    "document_version",
    "latest_positions",
    "load_document",
    "member",
    "open_tasks",
    "purge_tracks",
    "replace_document",
    "save_fixes",
    "set_status",
    "statuses",
    "team",
    "track",
    "unit_members",
    "unit_teams",
]

MemberRow = dict[str, Any]
#: A task is in hand while the case is open at its handling unit 在办任务.
_OPEN_TASK_STATES = [str(CaseState.DISPATCHED), str(CaseState.ACCEPTED), str(CaseState.REOPENED)]


async def replace_document(*, session: AsyncSession, doc: ForcesDocument) -> int:
    """Replace the county's document and its member/team rows; returns the new version. 替换人员文档。"""
    county = doc.county_code
    current = await document_version(session=session, county=county)
    version = (current or 0) + 1
    stmt = insert(force_documents).values(
        county_code=county, version=version, document=doc.model_dump(mode="json"), loaded_at=func.now()
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[force_documents.c.county_code],
            set_={"version": version, "document": stmt.excluded.document, "loaded_at": func.now()},
        )
    )
    await session.execute(delete(force_members).where(force_members.c.county_code == county))
    await session.execute(delete(force_teams).where(force_teams.c.county_code == county))
    if doc.members:
        await session.execute(
            insert(force_members),
            [
                {
                    "member_id": m.member_id,
                    "county_code": county,
                    "unit": m.unit,
                    "name": m.name,
                    "role": m.role,
                    "grids": list(m.grids),
                    "terminal_id": m.terminal_id,
                    "phone": m.phone,
                }
                for m in doc.members
            ],
        )
    if doc.teams:
        await session.execute(
            insert(force_teams),
            [
                {"team_id": t.team_id, "county_code": county, "unit": t.unit, "name": t.name, "members": t.members}
                for t in doc.teams
            ],
        )
    return version


async def document_version(*, session: AsyncSession, county: str) -> int | None:
    return (
        await session.execute(select(force_documents.c.version).where(force_documents.c.county_code == county))
    ).scalar_one_or_none()


async def load_document(*, session: AsyncSession, county: str) -> tuple[int, ForcesDocument] | None:
    row = (
        await session.execute(
            select(force_documents.c.version, force_documents.c.document).where(force_documents.c.county_code == county)
        )
    ).first()
    return None if row is None else (row.version, ForcesDocument.model_validate(row.document))


async def member(*, session: AsyncSession, member_id: str) -> MemberRow | None:
    row = (
        (await session.execute(select(force_members).where(force_members.c.member_id == member_id))).mappings().first()
    )
    return dict(row) if row is not None else None


async def team(*, session: AsyncSession, team_id: str) -> MemberRow | None:
    row = (await session.execute(select(force_teams).where(force_teams.c.team_id == team_id))).mappings().first()
    return dict(row) if row is not None else None


async def unit_members(*, session: AsyncSession, units: Sequence[str] | None) -> list[MemberRow]:
    """Members of ``units`` (None: all), by unit and id. 单位队员。"""
    q = select(force_members).order_by(force_members.c.unit, force_members.c.member_id)
    if units is not None:
        q = q.where(force_members.c.unit.in_(list(units)))
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def unit_teams(*, session: AsyncSession, unit: str) -> list[MemberRow]:
    q = select(force_teams).where(force_teams.c.unit == unit).order_by(force_teams.c.team_id)
    return [dict(r) for r in (await session.execute(q)).mappings()]


async def set_status(*, session: AsyncSession, member_id: str, busy: bool, reason: str, at: datetime) -> None:
    """忙闲: the terminal's busy/free, last one wins. 标记忙碌/空闲。"""
    stmt = insert(force_status).values(member_id=member_id, busy=busy, reason=reason, since=at)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[force_status.c.member_id],
            set_={"busy": busy, "reason": reason, "since": at},
        )
    )


async def statuses(*, session: AsyncSession, member_ids: Sequence[str]) -> dict[str, MemberStatus]:
    rows = await session.execute(select(force_status).where(force_status.c.member_id.in_(list(member_ids))))
    return {r.member_id: MemberStatus(busy=r.busy, reason=r.reason, since=r.since) for r in rows}


_SAVE_TRACK = text(
    "INSERT INTO dispatch.force_tracks (member_id, at, lng, lat) "
    "SELECT * FROM unnest(CAST(:m AS text[]), CAST(:t AS timestamptz[]), CAST(:x AS float8[]), CAST(:y AS float8[]))"
)
# The newest fix per member of the batch replaces the stored one only when newer (batches may arrive late).
_SAVE_LATEST = text(
    "INSERT INTO dispatch.force_positions (member_id, at, lng, lat) "
    "SELECT DISTINCT ON (m) m, t, x, y FROM unnest(CAST(:m AS text[]), CAST(:t AS timestamptz[]), "
    "CAST(:x AS float8[]), CAST(:y AS float8[])) AS u(m, t, x, y) ORDER BY m, t DESC "
    "ON CONFLICT (member_id) DO UPDATE SET at = excluded.at, lng = excluded.lng, lat = excluded.lat "
    "WHERE force_positions.at < excluded.at"
)


async def save_fixes(*, session: AsyncSession, fixes: Sequence[Fix]) -> None:
    """A batch of fixes: the track (one statement) and the latest per member (one statement). 保存位置。"""
    if not fixes:
        return
    params = {
        "m": [f.member_id for f in fixes],
        "t": [f.at for f in fixes],
        "x": [f.lng for f in fixes],
        "y": [f.lat for f in fixes],
    }
    await session.execute(_SAVE_TRACK, params)
    await session.execute(_SAVE_LATEST, params)


async def latest_positions(*, session: AsyncSession, member_ids: Sequence[str] | None) -> dict[str, Fix]:
    q = select(force_positions)
    if member_ids is not None:
        q = q.where(force_positions.c.member_id.in_(list(member_ids)))
    return {r.member_id: Fix(r.member_id, r.at, r.lng, r.lat) for r in await session.execute(q)}


async def track(*, session: AsyncSession, member_id: str, since: datetime) -> list[Fix]:
    q = (
        select(force_tracks)
        .where(force_tracks.c.member_id == member_id, force_tracks.c.at >= since)
        .order_by(force_tracks.c.at)
    )
    return [Fix(r.member_id, r.at, r.lng, r.lat) for r in await session.execute(q)]


async def purge_tracks(*, session: AsyncSession, before: datetime, limit: int = 50_000) -> int:
    """Delete up to ``limit`` track points older than ``before``; returns how many. 清理过期轨迹。"""
    result = await session.execute(
        text(
            "DELETE FROM dispatch.force_tracks WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM dispatch.force_tracks WHERE at < :before LIMIT :limit))"
        ),
        {"before": before, "limit": limit},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def open_tasks(*, session: AsyncSession, unit: str) -> dict[str, int]:
    """Open tasks in hand per member of ``unit`` (cases of the unit assigned to them). 在办任务数。"""
    member_col = func.unnest(cases.c.assignees).label("member_id")
    sub = select(member_col).where(cases.c.unit == unit, cases.c.state.in_(_OPEN_TASK_STATES)).subquery()
    q = select(sub.c.member_id, func.count()).group_by(sub.c.member_id)
    return {r[0]: int(r[1]) for r in await session.execute(q)}
