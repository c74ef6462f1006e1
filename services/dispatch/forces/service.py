"""力量调度's use cases (keyword-only, never commit): load the people document, duty, busy/free,
positions, suggestions and assignment to a member or team (派单到人).

Assignment goes through the case lifecycle (:data:`~services.dispatch.case_model.Action.ASSIGN_MEMBER`,
``case.member_assigned`` on the timeline and on ``case.events``); a ``member`` token may assign only
when it is its unit's leader (负责人) in the registry, and then acts with the unit's authority.
派单到人经由案件状态机，记入时间线与事件。
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch.actions import ActionOutcome, ActionProblem, perform_action
from services.dispatch.case_model import Action, Actor, Role
from services.dispatch.forces import store
from services.dispatch.forces.availability import RosterIndex, availability
from services.dispatch.forces.people import ForcesDocument, problems
from services.dispatch.forces.positions import Fix
from services.dispatch.forces.suggestion import Candidate, CaseSpot, Suggestion, TeamCandidate, suggest
from services.dispatch.grid_client import LoadedJurisdiction
from services.dispatch.queries import get_case
from services.dispatch.records import CaseRecord

__all__ = [
    "ForcesProblem",
    "RosterCache",
    "assign_case",
    "case_suggestions",
    "load_forces",
    "unit_duty",
]


class ForcesProblem(ValueError):
    """A request the forces service refuses (→ 422, or 403 with ``forbidden``). 力量调度拒绝的请求。"""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


class RosterCache:
    """The roster index of the county's current document version (rebuilt when the version moves). 排班缓存。"""

    def __init__(self) -> None:
        self._version: int | None = None
        self._index = RosterIndex(())

    async def index(self, *, session: AsyncSession, county: str) -> RosterIndex:
        version = await store.document_version(session=session, county=county)
        if version != self._version:
            loaded = await store.load_document(session=session, county=county)
            self._index = RosterIndex(loaded[1].shifts if loaded else ())
            self._version = loaded[0] if loaded else None
        return self._index


async def load_forces(*, session: AsyncSession, doc: ForcesDocument, jurisdiction: LoadedJurisdiction) -> int:
    """Validate ``doc`` against the jurisdiction and replace the county's document; its version. 载入人员文档。"""
    snap = jurisdiction.snapshot
    if doc.county_code != snap.county_code:
        raise ForcesProblem(f"county {doc.county_code!r} is not the loaded county {snap.county_code!r} 区县不符")
    units = {u.id for u in snap.units()}
    grids = {d.code for d in snap.divisions("grid")}
    found = problems(doc, units=units, grids=grids)
    if found:
        raise ForcesProblem("; ".join(found[:20]))
    return await store.replace_document(session=session, doc=doc)


@dataclass(frozen=True)
class UnitForces:
    """A unit's members with their availability, positions and open tasks 单位力量（在岗、位置、任务）."""

    members: list[store.MemberRow]
    candidates: list[Candidate]
    teams: list[TeamCandidate]


async def unit_forces(
    *, session: AsyncSession, unit: str, county: str, rosters: RosterCache, calendar: Any, now: datetime
) -> UnitForces:
    members = await store.unit_members(session=session, units=[unit])
    ids = [m["member_id"] for m in members]
    index = await rosters.index(session=session, county=county)
    status = await store.statuses(session=session, member_ids=ids)
    positions = await store.latest_positions(session=session, member_ids=ids)
    tasks = await store.open_tasks(session=session, unit=unit)
    candidates = [
        Candidate(
            member_id=m["member_id"],
            name=m["name"],
            role=m["role"],
            grids=tuple(m["grids"]),
            availability=availability(index.duty(m["member_id"], now, calendar), status.get(m["member_id"])),
            position=positions.get(m["member_id"]),
            open_tasks=tasks.get(m["member_id"], 0),
        )
        for m in members
    ]
    teams = [
        TeamCandidate(t["team_id"], t["name"], tuple(t["members"]))
        for t in await store.unit_teams(session=session, unit=unit)
    ]
    return UnitForces(members, candidates, teams)


def _fix_json(fix: Fix | None) -> dict[str, Any] | None:
    return None if fix is None else {"at": fix.at.isoformat(), "lng": fix.lng, "lat": fix.lat}


async def unit_duty(
    *, session: AsyncSession, unit: str, county: str, rosters: RosterCache, calendar: Any, now: datetime
) -> list[dict[str, Any]]:
    """Each member of ``unit`` now: on duty since, busy, available and why, latest position. 单位值班在岗情况。"""
    forces = await unit_forces(session=session, unit=unit, county=county, rosters=rosters, calendar=calendar, now=now)
    out = []
    for c in forces.candidates:
        a = c.availability
        out.append(
            {
                "member_id": c.member_id,
                "name": c.name,
                "role": c.role,
                "on_duty": a.duty is not None,
                "on_duty_since": a.duty.since.isoformat() if a.duty else None,
                "on_duty_until": a.duty.until.isoformat() if a.duty else None,
                "busy": a.busy,
                "available": a.available,
                "reason_zh": a.reason_zh,
                "open_tasks": c.open_tasks,
                "position": _fix_json(c.position),
            }
        )
    return out


def _spot(record: CaseRecord) -> CaseSpot:
    return CaseSpot(record.lng, record.lat, record.grid, grid_matter=record.source == "gridworker")


async def _dispatching_actor(*, session: AsyncSession, actor: Actor) -> Actor:
    """Who sends people: a dispatcher or admin, the unit's account, or the unit's leader (负责人, a member
    token of role leader in the registry), who acts with the unit's authority (role ``unit``, its member id
    as the actor id on the timeline). 派单人：派遣员、单位账号，或以单位身份行事的本单位负责人。"""
    if actor.role is Role.MEMBER:
        me = await store.member(session=session, member_id=actor.id or "")
        if me is None or me["unit"] != actor.unit or me["role"] != "leader":
            raise ForcesProblem("只有本单位负责人可以派单到人 / only the unit's leader may assign", forbidden=True)
        return Actor(Role.UNIT, unit=actor.unit, township=actor.township, id=actor.id)
    if actor.role not in (Role.UNIT, Role.DISPATCHER, Role.ADMIN):
        raise ForcesProblem(f"角色 {actor.role} 不能派单到人 / role may not assign people", forbidden=True)
    return actor


async def _case_for_dispatch(*, session: AsyncSession, case_id: uuid.UUID, actor: Actor) -> tuple[Actor, CaseRecord]:
    acting = await _dispatching_actor(session=session, actor=actor)
    record = await get_case(session=session, case_id=case_id, actor=acting)
    if acting.role is Role.UNIT and record.snapshot.primary_unit != acting.unit:
        raise ForcesProblem(f"{acting.unit} 不是主办单位 / not the primary unit", forbidden=True)
    return acting, record


async def case_suggestions(
    *,
    session: AsyncSession,
    case_id: uuid.UUID,
    actor: Actor,
    county: str,
    rosters: RosterCache,
    calendar: Any,
    now: datetime,
    limit: int = 20,
) -> tuple[CaseRecord, list[Suggestion]]:
    """Who to send for a case (raises ``CaseNotFoundError`` / :class:`ForcesProblem`). 案件派单建议。"""
    _, record = await _case_for_dispatch(session=session, case_id=case_id, actor=actor)
    unit = record.snapshot.primary_unit
    if unit is None:
        raise ForcesProblem("案件尚无主办单位 / the case has no handling unit yet")
    forces = await unit_forces(session=session, unit=unit, county=county, rosters=rosters, calendar=calendar, now=now)
    return record, suggest(_spot(record), forces.candidates, forces.teams, now, limit=limit)


async def assign_case(
    *,
    session: AsyncSession,
    case_id: uuid.UUID,
    actor: Actor,
    assignee: str,
    expected_version: int | None,
    note: str,
    now: datetime,
    jurisdiction: LoadedJurisdiction | None,
    max_rejections: int,
    correlation_id: str,
) -> ActionOutcome:
    """派单到人: assign a case of a unit to one of its members or teams (through the lifecycle). 派单到人。"""
    acting, record = await _case_for_dispatch(session=session, case_id=case_id, actor=actor)
    unit = record.snapshot.primary_unit
    kind: Literal["member", "team"]
    found = await store.member(session=session, member_id=assignee)
    if found is not None:
        kind, members = "member", [assignee]
    else:
        found = await store.team(session=session, team_id=assignee)
        kind, members = "team", list(found["members"]) if found else []
    if found is None or found["unit"] != unit:
        return ActionOutcome(
            record,
            refused=ActionProblem(
                "invalid",
                f"{assignee} 不是主办单位 {unit} 的队员或编组 / not a member or team of {unit}",
                str(record.snapshot.state),
                record.snapshot.version,
            ),
        )
    body = {
        "expected_version": record.snapshot.version if expected_version is None else expected_version,
        "assignee": assignee,
        "assignee_kind": kind,
        "members": members,
        "note": note,
    }
    return await perform_action(
        session=session,
        case_id=case_id,
        action=Action.ASSIGN_MEMBER,
        body=body,
        actor=acting,
        now=now,
        jurisdiction=jurisdiction,
        max_rejections=max_rejections,
        correlation_id=correlation_id,
    )
