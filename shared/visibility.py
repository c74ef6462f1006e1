"""Who may see a case 可见范围 — the one rule, in Python and in SQL.

- admin, hotline and system see every case;
- a unit sees the cases it handles (主办), helps with (协办) or was whistled to
  (吹哨部门, ``escalated_to``);
- dispatchers and township admins see their township (``*`` = the whole county).

:func:`sees_case` answers for one case already in memory; :func:`case_scope`
builds the same rule as a SQLAlchemy condition over whichever table holds the
columns (dispatch's ``cases``, metrics' ``case_facts``), so the list a caller is
shown and the single case they may open can never disagree. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, any_, false, literal, or_, true

#: The township value meaning "the whole county" 全县.
WHOLE_COUNTY: Final = "*"

#: Roles that see every case 全量可见角色.
_SEE_ALL: Final = frozenset({"admin", "hotline", "system"})


@dataclass(frozen=True, slots=True)
class Viewer:
    """Whose eyes 查看者: a role, its township (``*`` = county) and, for role ``unit``, its unit."""

    role: str
    township: str | None = None
    unit: str | None = None

    @classmethod
    def of(cls, who: Any) -> Viewer:
        """The viewer of anything with ``role``, ``township`` and ``unit`` (a staff principal, an actor)."""
        return cls(role=str(who.role), township=who.township, unit=who.unit)

    @property
    def sees_all(self) -> bool:
        return self.role in _SEE_ALL or (self.role != "unit" and self.township == WHOLE_COUNTY)

    @property
    def only_unit(self) -> str | None:
        """The unit this viewer is confined to (None: not unit-bound)."""
        return self.unit if self.role == "unit" else None

    @property
    def only_township(self) -> str | None:
        """The township this viewer is confined to (None: the whole county, or unit-bound)."""
        if self.role == "unit" or self.sees_all:
            return None
        return self.township


def sees_case(
    viewer: Viewer,
    *,
    township: str | None,
    unit: str | None,
    cohandlers: Iterable[str] = (),
    escalated_to: str | None = None,
) -> bool:
    """Whether ``viewer`` may see a case with these holders (otherwise the APIs answer 404)."""
    if viewer.role in _SEE_ALL:
        return True
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
) -> ColumnElement[bool]:
    """:func:`sees_case` as a SQL condition over the given columns (``cohandlers`` a text[] column).

    ``escalated_to`` may be None where the table does not record whistles; a unit
    then sees what it handles or helps with.
    """
    if viewer.role in _SEE_ALL:
        return true()
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
