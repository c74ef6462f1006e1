"""Who to send 派单建议 (pure): the available members and teams of the case's unit, each with why.

Order (one rule, :func:`suggest`):

1. available members with a fresh position (≤ 30 min, :data:`.positions.FRESH_FOR`), nearest first;
2. without a fresh position: grid workers whose grids contain the case's grid (网格员, 本网格) — for
   grid matters (网格事项: reports by grid workers) they come before everyone without a fresh position;
3. the rest of the available members;

ties broken by fewer open tasks in hand, then the longest on duty, then the member id. A team is
suggested when at least one of its members is available; it ranks as its best available member and
its reason names them. Unavailable members are not suggested (the caller may list them apart).
Each suggestion says why: distance, on duty since, open tasks in hand, grid covered.
按距离（新鲜位置）、本网格网格员、其余在岗队员排序；并列时任务少者、在班久者优先；每条建议附理由。
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.dispatch.forces.availability import LOCAL_TZ, Availability
from services.dispatch.forces.positions import Fix, fresh
from shared.geo import haversine_m

__all__ = ["Candidate", "CaseSpot", "Suggestion", "TeamCandidate", "suggest"]


@dataclass(frozen=True, slots=True)
class CaseSpot:
    """Where the case is and what kind 案件位置与类型: WGS-84 point (if any), grid, grid matter."""

    lng: float | None
    lat: float | None
    grid: str | None
    grid_matter: bool = False


@dataclass(frozen=True, slots=True)
class Candidate:
    """A member of the case's unit as the suggestion sees them 候选队员."""

    member_id: str
    name: str
    role: str
    grids: tuple[str, ...]
    availability: Availability
    position: Fix | None
    open_tasks: int


@dataclass(frozen=True, slots=True)
class TeamCandidate:
    """A team of the unit 候选编组."""

    team_id: str
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One suggestion 建议: who (member or team), its tier, distance and reasons."""

    kind: str  # "member" | "team"
    id: str
    name: str
    tier: int
    distance_m: float | None
    open_tasks: int
    on_duty_since: datetime | None
    reasons: tuple[str, ...]
    members: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "tier": self.tier,
            "distance_m": None if self.distance_m is None else round(self.distance_m),
            "open_tasks": self.open_tasks,
            "on_duty_since": self.on_duty_since.isoformat() if self.on_duty_since else None,
            "reasons": list(self.reasons),
            "members": list(self.members),
        }


def _member(c: Candidate, spot: CaseSpot, now: datetime) -> Suggestion:
    reasons: list[str] = []
    distance: float | None = None
    covers = spot.grid is not None and spot.grid in c.grids
    if c.position is not None and fresh(c.position.at, now) and spot.lng is not None and spot.lat is not None:
        distance = haversine_m(c.position.lng, c.position.lat, spot.lng, spot.lat)
        minutes = int((now - c.position.at).total_seconds() // 60)
        reasons.append(f"距案发点约 {round(distance)} 米（{minutes} 分钟前定位） / about {round(distance)} m away")
        tier = 1
    elif covers and c.role == "grid_worker":
        reasons.append(f"网格员，负责本网格 {spot.grid} / grid worker of the case's grid")
        tier = 2 if spot.grid_matter else 3
    else:
        reasons.append("无新鲜位置 / no fresh position")
        tier = 3
    if covers and tier == 1 and c.role == "grid_worker":
        reasons.append(f"负责本网格 {spot.grid} / covers the case's grid")
    duty = c.availability.duty
    if duty is not None:
        reasons.append(f"{duty.since.astimezone(LOCAL_TZ):%m-%d %H:%M} 起在班 / on duty since then")
    reasons.append(f"在办任务 {c.open_tasks} 件 / {c.open_tasks} open task(s) in hand")
    return Suggestion(
        "member",
        c.member_id,
        c.name,
        tier,
        distance,
        c.open_tasks,
        duty.since if duty else None,
        tuple(reasons),
        (c.member_id,),
    )


def _key(s: Suggestion) -> tuple[int, float, int, float, str]:
    since = s.on_duty_since.timestamp() if s.on_duty_since else float("inf")
    return (s.tier, s.distance_m if s.distance_m is not None else 0.0, s.open_tasks, since, s.id)


def suggest(
    spot: CaseSpot,
    members: Sequence[Candidate],
    teams: Sequence[TeamCandidate],
    now: datetime,
    *,
    limit: int = 20,
) -> list[Suggestion]:
    """The suggestions for a case, best first (see the module's order). 派单建议（最佳在前）。"""
    ranked = sorted(
        (_member(c, spot, now) for c in members if c.availability.available),
        key=_key,
    )
    best: Mapping[str, Suggestion] = {s.id: s for s in ranked}
    position = {s.id: i for i, s in enumerate(ranked)}
    team_rows: list[tuple[int, Suggestion]] = []
    for t in teams:
        present = [m for m in t.members if m in best]
        if not present:
            continue
        lead = min(present, key=lambda m: position[m])
        first = best[lead]
        reasons = (f"{len(present)}/{len(t.members)} 人在岗可派 / available members", *first.reasons[:1])
        team = Suggestion(
            "team",
            t.team_id,
            t.name,
            first.tier,
            first.distance_m,
            sum(best[m].open_tasks for m in present),
            first.on_duty_since,
            reasons,
            tuple(t.members),
        )
        team_rows.append((position[lead], team))
    merged: list[Suggestion] = []
    teams_after: dict[int, list[Suggestion]] = {}
    for pos, team in team_rows:
        teams_after.setdefault(pos, []).append(team)
    for i, s in enumerate(ranked):
        merged.append(s)
        merged.extend(sorted(teams_after.get(i, []), key=lambda t: t.id))
    return merged[:limit]
