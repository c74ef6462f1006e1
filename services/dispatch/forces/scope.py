"""Who may see and act on a unit's forces 力量数据范围 (pure).

People, duty and positions are personal data: visible to the member's unit and the command centre.

- admin and county-wide dispatchers: every unit;
- township-bound dispatchers and township admins: the units of their township (offices and the
  enforcement team, and stationed agencies covering it);
- a ``unit`` token: its own unit; a ``member`` token: itself only (its own record, status, track);
- the hotline sees no forces.
队员数据为个人信息：本单位与指挥中心可见；乡镇账号见本乡镇单位；队员只见本人。
"""

from __future__ import annotations

from shared.auth import StaffPrincipal
from shared.jurisdiction.model import Unit

__all__ = ["sees_member", "sees_unit", "sees_unit_phones"]


def sees_unit(principal: StaffPrincipal, unit: Unit | None, unit_id: str) -> bool:
    """Whether ``principal`` may see the forces of ``unit_id`` (``unit``: its registry entry, if known)."""
    role = principal.role
    if role == "admin" or (role == "dispatcher" and principal.whole_county):
        return True
    if role == "unit":
        return principal.unit == unit_id
    if role in ("dispatcher", "township_admin") and unit is not None:
        return unit.township_code == principal.township or principal.township in (unit.covers or ())
    return False


def sees_member(principal: StaffPrincipal, unit: Unit | None, member_id: str, member_unit: str) -> bool:
    """A member's record, status and track: the unit's viewers, or the member itself. 队员本人或本单位可见。"""
    if principal.role == "member":
        return principal.member == member_id and principal.unit == member_unit
    return sees_unit(principal, unit, member_unit)


def sees_unit_phones(principal: StaffPrincipal, unit_id: str) -> bool:
    """Phones unmasked: the unit's own account and the admin only. 电话明文：本单位账号与管理员。"""
    return principal.role == "admin" or (principal.role == "unit" and principal.unit == unit_id)
