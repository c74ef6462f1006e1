"""Duplicate detection (重复件合并): pure helpers, no I/O.

Two rules from the team's domain notes (jurisdiction):
两条规则：

* **Nearby 近距离同类** — the same matter, within ``distance_m`` (default 50 m,
  :func:`shared.geo.haversine_m`) and ``window`` (default 24 h) of an *open*
  case → merged into the first such case. 同一事项、相距不超过 50 米、时间相差
  不超过 24 小时、且首件未结案 → 并入首件。
* **Repeat caller 重复来电** — a 12345 caller (same ``caller.phone_hash``) calling
  again about an open case in the same place (same grid, or within
  ``distance_m``) and of the same matter (or either matter unknown) → linked
  to that case whatever the time. 12345 同一来电人就同一地点的未结案件再次来电 → 关联到该案件。

The database query that collects the open cases near a point is the caller's
job (:func:`search_box` gives its bounding box); so is serialising the check
across replicas — :func:`lock_keys` names the ``pg_advisory_xact_lock`` keys
that two reports which might be duplicates of each other always share.
数据库查询与跨副本串行化由调用方完成：:func:`search_box` 给出查询范围，
:func:`lock_keys` 给出可能互为重复的两条报告必然共享的咨询锁键。
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from shared.geo import haversine_m

__all__ = [
    "DEFAULT_DISTANCE_M",
    "DEFAULT_WINDOW",
    "LOCK_CELL_DEG",
    "DuplicateMatch",
    "OpenCase",
    "Report",
    "advisory_key",
    "find_duplicate",
    "lock_cell",
    "lock_cells",
    "lock_keys",
    "search_box",
]

DEFAULT_DISTANCE_M = 50.0
DEFAULT_WINDOW = timedelta(hours=24)
#: Size of the lock grid cells in degrees (≈ 1.1 km N–S); must exceed 2 × distance. 锁网格边长（度）。
LOCK_CELL_DEG = 0.01
_M_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True, slots=True)
class Report:
    """The new report being checked. 待检查的新报告。"""

    matter: str | None
    reported_at: datetime
    lng: float | None = None
    lat: float | None = None
    grid: str | None = None
    source: str | None = None
    phone_hash: str | None = None


@dataclass(frozen=True, slots=True)
class OpenCase:
    """An open (未结案), unmerged case that the new report might duplicate. 可能被重复的未结案件。"""

    case_id: str
    matter: str | None
    reported_at: datetime
    lng: float | None = None
    lat: float | None = None
    grid: str | None = None
    source: str | None = None
    phone_hash: str | None = None


@dataclass(frozen=True, slots=True)
class DuplicateMatch:
    """The case a report is merged into, and why. 并入的案件及原因。"""

    case_id: str
    reason: Literal["nearby", "repeat_caller"]
    distance_m: float | None
    explanation_zh: str


def _distance(report: Report, case: OpenCase) -> float | None:
    if report.lng is None or report.lat is None or case.lng is None or case.lat is None:
        return None
    return haversine_m(report.lng, report.lat, case.lng, case.lat)


def find_duplicate(
    report: Report,
    open_cases: Iterable[OpenCase],
    *,
    distance_m: float = DEFAULT_DISTANCE_M,
    window: timedelta = DEFAULT_WINDOW,
) -> DuplicateMatch | None:
    """The first open case ``report`` duplicates (earliest reported, then smallest id), or ``None``.

    返回 ``report`` 重复的最早未结案件（按上报时间、再按 id），没有则返回 None。
    """
    matches: list[tuple[datetime, str, DuplicateMatch]] = []
    for case in open_cases:
        distance = _distance(report, case)
        if (
            report.matter is not None
            and case.matter == report.matter
            and distance is not None
            and distance <= distance_m
            and abs(report.reported_at - case.reported_at) <= window
        ):
            text = (
                f"与案件 {case.case_id} 同为事项 {case.matter}，相距 {distance:.0f} 米（≤ {distance_m:g} 米），"
                f"上报时间相差 {abs(report.reported_at - case.reported_at).total_seconds() / 3600:.1f} 小时"
                f"（≤ {window.total_seconds() / 3600:g} 小时），首件未结案：并案"
            )
            matches.append((case.reported_at, case.case_id, DuplicateMatch(case.case_id, "nearby", distance, text)))
            continue
        if (
            report.source == "12345"
            and report.phone_hash
            and case.phone_hash == report.phone_hash
            and (report.matter is None or case.matter is None or case.matter == report.matter)
            and (
                (report.grid is not None and report.grid == case.grid)
                or (distance is not None and distance <= distance_m)
            )
        ):
            where = f"同一网格 {case.grid}" if report.grid is not None and report.grid == case.grid else "同一地点"
            text = f"同一来电人再次反映{where}的未结案件 {case.case_id}：关联至该案件"
            matches.append(
                (case.reported_at, case.case_id, DuplicateMatch(case.case_id, "repeat_caller", distance, text))
            )
    if not matches:
        return None
    matches.sort(key=lambda m: (m[0], m[1]))
    return matches[0][2]


def search_box(lng: float, lat: float, distance_m: float) -> tuple[float, float, float, float]:
    """``(min_lng, min_lat, max_lng, max_lat)`` containing every point within ``distance_m``.

    覆盖半径 ``distance_m`` 内所有点的经纬度范围（略大，供数据库预筛）。
    """
    dlat = distance_m / _M_PER_DEG_LAT * 1.01
    dlng = distance_m / (_M_PER_DEG_LAT * max(math.cos(math.radians(lat)), 0.01)) * 1.01
    return lng - dlng, lat - dlat, lng + dlng, lat + dlat


def advisory_key(text: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock``. 稳定的 64 位咨询锁键。"""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


def lock_cell(lng: float, lat: float) -> tuple[int, int]:
    """The lock cell ``(x, y)`` of a point (cells of :data:`LOCK_CELL_DEG`). 点所在的锁网格单元。"""
    return math.floor(lng / LOCK_CELL_DEG), math.floor(lat / LOCK_CELL_DEG)


def lock_cells(lng: float, lat: float, distance_m: float = DEFAULT_DISTANCE_M) -> list[tuple[int, int]]:
    """Every lock cell the ``distance_m`` box around a point touches. 半径范围所触及的全部锁网格单元。

    A point within ``distance_m`` of this one lies in one of them. 相距不超过 ``distance_m`` 的点必落在其中。
    """
    min_lng, min_lat, max_lng, max_lat = search_box(lng, lat, distance_m)
    (x0, y0), (x1, y1) = lock_cell(min_lng, min_lat), lock_cell(max_lng, max_lat)
    return [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def lock_keys(
    *,
    matter: str | None,
    lng: float | None,
    lat: float | None,
    phone_hash: str | None = None,
    distance_m: float = DEFAULT_DISTANCE_M,
    reported_at: datetime | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> list[int]:
    """Advisory lock keys to hold while checking and creating a case, sorted (no deadlock between two).

    检查并建案期间持有的咨询锁键（已排序，两事务间不会死锁）。

    For a point: the (matter, cell) keys of every lock cell the ``distance_m``
    box around it touches — two reports within ``distance_m`` always share the
    cell of either one. With ``reported_at``, each of those keys is taken for the
    report's ``window``-long time slot and the slot before it: two reports within
    ``window`` of each other are at most one slot apart, so they still share a key,
    while a history import's reports (months ago) never share one with today's live
    reports and never make them wait. For a 12345 caller: a key of the phone hash
    (the repeat-caller rule has no time limit).
    有坐标：半径范围所触及的（事项，网格单元）键——相距不超过 ``distance_m`` 的两条报告
    必然共享其中一条所在单元的键；给出上报时间时，每个键再按时间窗分段（本段与前一段），
    时间相差不超过窗口的两条报告仍共享一个键，而历史导入的报告不会与今日实时报告互相等待；
    有来电人：来电人哈希的键（重复来电规则不限时间）。
    """
    keys: set[int] = set()
    if matter is not None and lng is not None and lat is not None:
        slots: tuple[str, ...] = ("",)
        if reported_at is not None:
            slot = math.floor(reported_at.timestamp() / window.total_seconds())
            slots = (f":{slot - 1}", f":{slot}")
        for x, y in lock_cells(lng, lat, distance_m):
            for suffix in slots:
                keys.add(advisory_key(f"dup:{matter}:{x}:{y}{suffix}"))
    if phone_hash:
        keys.add(advisory_key(f"caller:{phone_hash}"))
    return sorted(keys)
