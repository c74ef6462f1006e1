"""Who may see a case 可见范围 — the one rule, in Python and in SQL.

- admin, hotline and system see every case;
- a unit sees the cases it handles (主办), helps with (协办) or was whistled to
  (吹哨部门, ``escalated_to``);
- dispatchers and township admins see their township (``*`` = the whole county);
- a member (队员, role ``member``) sees only the cases assigned to them (派单到人: the case's
  ``assignees``, themselves or a team they were in), and only while their unit handles the case.

:func:`sees_case` answers for one case already in memory; :func:`case_scope`
builds the same rule as a SQLAlchemy condition over whichever table holds the
columns (dispatch's ``cases``, metrics' ``case_facts``), so the list a caller is
shown and the single case they may open can never disagree. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, any_, false, literal, or_, true

#: The township value meaning "the whole county" 全县.
WHOLE_COUNTY: Final = "*"

#: Roles that see every case 全量可见角色.
_SEE_ALL: Final = frozenset({"admin", "hotline", "system"})
#: The member role 队员: sees only the cases assigned to them.
MEMBER: Final = "member"
#: Roles bound to one unit 单位绑定角色.
_UNIT_BOUND: Final = frozenset({"unit", MEMBER})


@dataclass(frozen=True, slots=True)
class Viewer:
    """Whose eyes 查看者: a role, its township (``*`` = county), for roles ``unit`` and ``member`` its
    unit, and for role ``member`` the member id."""

    role: str
    township: str | None = None
    unit: str | None = None
    member: str | None = None

    @classmethod
    def of(cls, who: Any) -> Viewer:
        """The viewer of anything with ``role``, ``township`` and ``unit`` (a staff principal, an actor).

        A member's id is its ``member`` (a staff principal) or, for an actor of role ``member``, its ``id``."""
        role = str(who.role)
        member = getattr(who, "member", None) or (getattr(who, "id", None) if role == MEMBER else None)
        return cls(role=role, township=who.township, unit=who.unit, member=member)

    @property
    def sees_all(self) -> bool:
        return self.role in _SEE_ALL or (self.role not in _UNIT_BOUND and self.township == WHOLE_COUNTY)

    @property
    def only_unit(self) -> str | None:
        """The unit this viewer is confined to (None: not unit-bound)."""
        return self.unit if self.role in _UNIT_BOUND else None

    @property
    def only_township(self) -> str | None:
        """The township this viewer is confined to (None: the whole county, or unit-bound)."""
        if self.role in _UNIT_BOUND or self.sees_all:
            return None
        return self.township


def sees_case(
    viewer: Viewer,
    *,
    township: str | None,
    unit: str | None,
    cohandlers: Iterable[str] = (),
    escalated_to: str | None = None,
    assignees: Iterable[str] = (),
) -> bool:
    """Whether ``viewer`` may see a case with these holders (otherwise the APIs answer 404).

    ``assignees``: the members the case was assigned to (派单到人), for role ``member``."""
    if viewer.role in _SEE_ALL:
        return True
    if viewer.role == MEMBER:
        return bool(viewer.member) and bool(viewer.unit) and viewer.unit == unit and viewer.member in tuple(assignees)
    if viewer.role == "unit":
        own = viewer.unit
        return own is not None and own != "" and (own == unit or own == escalated_to or own in tuple(cohandlers))
    if not viewer.township:
        return False
    return viewer.township == WHOLE_COUNTY or viewer.township == township


def case_scope(
    viewer: Viewer,
    *,
    township: Any,
    unit: Any,
    cohandlers: Any,
    escalated_to: Any | None = None,
    assignees: Any | None = None,
) -> ColumnElement[bool]:
    """:func:`sees_case` as a SQL condition over the given columns (``cohandlers`` a text[] column).

    ``escalated_to`` may be None where the table does not record whistles; a unit
    then sees what it handles or helps with. ``assignees`` (a text[] column) may be None
    where the table does not record assignments to people; a member then sees nothing there.
    """
    if viewer.role in _SEE_ALL:
        return true()
    if viewer.role == MEMBER:
        if not viewer.member or not viewer.unit or assignees is None:
            return false()
        return and_(unit == viewer.unit, literal(viewer.member) == any_(assignees))
    if viewer.role == "unit":
        if not viewer.unit:
            return false()
        own = [unit == viewer.unit, literal(viewer.unit) == any_(cohandlers)]
        if escalated_to is not None:
            own.append(escalated_to == viewer.unit)
        return or_(*own)
    if not viewer.township:
        return false()
    if viewer.township == WHOLE_COUNTY:
        return true()
    result: ColumnElement[bool] = township == viewer.township
    return result
