"""What a caller may see in metrics 数据范围 — :mod:`shared.visibility` applied to filters and rows.

- admin, hotline and county-wide staff (township ``*``) see everything;
- township-bound staff see their township's rows; a ``unit`` token sees its own unit's;
- a ``member`` token (队员) sees its own tasks only, in dispatch: no figures here (every filter is refused).

A filter naming someone else's unit or township is refused (:class:`OutOfScopeError`, a 403);
rows outside the scope are left out. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from shared.visibility import MEMBER, Viewer, sees_case

__all__ = ["OutOfScopeError", "narrowed", "sees_row", "visible_rows"]


class OutOfScopeError(PermissionError):
    """A filter naming another unit or township than the caller's own. 超出数据范围。"""


def narrowed(viewer: Viewer, field: Literal["unit", "township"], requested: str | None) -> str | None:
    """The filter to apply: the caller's own unit/township when bound to one, else ``requested``.

    Asking for another one raises :class:`OutOfScopeError`, and so does any filter of a member token
    (队员账号只见本人任务，不见考核数据). 受限账号只能按本单位/本乡镇筛选。"""
    if viewer.role == MEMBER:
        raise OutOfScopeError("a member token sees its own tasks only (in dispatch), not figures")
    own = viewer.only_unit if field == "unit" else viewer.only_township
    if own is None:
        return requested
    if requested is not None and requested != own:
        raise OutOfScopeError(f"your token only sees {field} {own!r}, not {requested!r}")
    return own


def sees_row(viewer: Viewer, row: Mapping[str, Any]) -> bool:
    """Whether ``viewer`` may see a per-unit row (a score, a rating) of ``row["unit"]`` in ``row["township"]``."""
    return sees_case(viewer, township=row.get("township"), unit=row.get("unit"))


def visible_rows(
    rows: Iterable[dict[str, Any]], viewer: Viewer, *, township: str | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    """The score rows ``viewer`` may see, optionally of one township and one unit kind. 范围内的评分行。"""
    return [
        r
        for r in rows
        if sees_row(viewer, r)
        and (township is None or r["township"] == township)
        and (kind is None or r["unit_kind"] == kind)
    ]
