"""The people document 力量登记 of a county (pure): members and teams per unit, and duty rosters.

One JSON document per county, loaded through ``PUT /v1/forces/{county}`` (admin), like the
jurisdiction: ``members`` (队员: ``member_id``, ``unit``, ``name``, ``role`` leader 负责人 / member 队员 /
grid_worker 网格员, ``grids`` a grid worker covers, ``terminal_id`` 移动终端, ``phone``), ``teams``
(中队/小组 of members of one unit) and ``shifts`` (值班排班, see :mod:`.availability`). Phone numbers
are personal data: masked outside the unit's own admin view. :func:`problems` lists what is wrong
with a document against the jurisdiction's units and grids. 每县一份文档；校验成员、编组与排班。
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, time
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from shared.inputs import NulFreeModel

__all__ = ["ForcesDocument", "MemberSpec", "ShiftSpec", "TeamSpec", "mask_phone", "problems"]

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
MemberRole = Literal["leader", "member", "grid_worker"]
#: Which days a shift runs 排班日: every day, working days (工作日, the working calendar), rest days
#: (周末及节假日), or listed dates. 每天 / 工作日 / 休息日 / 指定日期。
DayRule = Literal["daily", "working_days", "rest_days", "dates"]


class MemberSpec(NulFreeModel):
    """One member 队员 of a unit."""

    member_id: Id
    unit: Id
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
    role: MemberRole = "member"
    grids: list[Id] = Field(default_factory=list, max_length=50, description="grids covered 负责网格")
    terminal_id: Id | None = Field(None, description="mobile terminal id 移动终端编号")
    phone: Annotated[str, StringConstraints(max_length=20)] | None = None


class TeamSpec(NulFreeModel):
    """A team 中队/小组 of members of one unit."""

    team_id: Id
    unit: Id
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
    members: list[Id] = Field(min_length=1, max_length=200)


class ShiftSpec(NulFreeModel):
    """One shift rule 班次: a unit's members on duty from ``start`` to ``end`` (local time, Asia/Shanghai)
    on the days ``days`` says; ``end`` not after ``start`` runs across midnight into the next day (夜班)."""

    unit: Id
    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)] = ""
    start: time
    end: time
    days: DayRule = "daily"
    dates: list[date] = Field(default_factory=list, max_length=400)
    members: list[Id] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _dates_only_with_dates(self) -> ShiftSpec:
        if (self.days == "dates") != bool(self.dates):
            raise ValueError("`dates` is given exactly when `days` is 'dates'")
        return self


class ForcesDocument(NulFreeModel):
    """A county's people, teams and rosters 力量登记文档."""

    county_code: Id
    members: list[MemberSpec] = Field(default_factory=list, max_length=20_000)
    teams: list[TeamSpec] = Field(default_factory=list, max_length=5_000)
    shifts: list[ShiftSpec] = Field(default_factory=list, max_length=20_000)


def _dupes(ids: Iterable[str]) -> list[str]:
    return sorted(i for i, n in Counter(ids).items() if n > 1)


def problems(doc: ForcesDocument, *, units: set[str], grids: set[str]) -> list[str]:
    """What is wrong with ``doc`` given the jurisdiction's unit ids and grid codes (empty: valid).

    Checks: ids unique; every member's unit known; a grid worker's grids known; team and shift members
    are members of the team's / shift's unit. 校验：编号唯一、单位与网格存在、编组与班次成员属于本单位。"""
    out: list[str] = []
    member_unit = {m.member_id: m.unit for m in doc.members}
    for dup in _dupes(m.member_id for m in doc.members):
        out.append(f"member {dup!r} listed twice 队员编号重复")
    for dup in _dupes(t.team_id for t in doc.teams):
        out.append(f"team {dup!r} listed twice 编组编号重复")
    for dup in sorted(set(member_unit) & {t.team_id for t in doc.teams}):
        out.append(f"{dup!r} is both a member and a team id 编号冲突")
    for m in doc.members:
        if m.unit not in units:
            out.append(f"member {m.member_id!r}: unknown unit {m.unit!r} 单位不存在")
        for g in m.grids:
            if g not in grids:
                out.append(f"member {m.member_id!r}: unknown grid {g!r} 网格不存在")
    for where, unit, members in [(f"team {t.team_id!r}", t.unit, t.members) for t in doc.teams] + [
        (f"shift {i} ({s.unit} {s.label})", s.unit, s.members) for i, s in enumerate(doc.shifts)
    ]:
        if unit not in units:
            out.append(f"{where}: unknown unit {unit!r} 单位不存在")
        for mid in members:
            if member_unit.get(mid) != unit:
                out.append(f"{where}: {mid!r} is not a member of {unit} 非本单位队员")
    return out


def mask_phone(phone: str | None) -> str | None:
    """``138****5678``: a phone number shown outside the unit's own admin view. 电话脱敏。"""
    if not phone:
        return None
    digits = phone.strip()
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 8 else "****"
