"""Terminal positions 终端位置 (pure): a batch from terminals → WGS-84 rows, and freshness.

Terminals post batches of ``{member_id, at, lng, lat, crs}``; every point is converted to WGS-84
(:func:`shared.geo.to_wgs84`: GCJ-02 火星坐标 and BD-09 百度坐标 inverted) before it is stored. A
position is **fresh** for suggestions when not older than :data:`FRESH_FOR` (30 min); the track
keeps :data:`TRACK_KEEP` (24 h) for playback. Positions are personal data: never on Kafka.
终端批量上报位置，统一转换为 WGS-84；30 分钟内为新鲜位置；轨迹保留 24 小时。
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from shared.geo import Crs, to_wgs84
from shared.inputs import NulFreeModel

__all__ = ["FRESH_FOR", "MAX_BATCH", "TRACK_KEEP", "Fix", "PositionIn", "fresh", "to_fixes"]

#: A position older than this is not used to rank suggestions 新鲜位置时限.
FRESH_FOR = timedelta(minutes=30)
#: How long the track is kept 轨迹保留时长.
TRACK_KEEP = timedelta(hours=24)
#: Positions per post 每批最多条数.
MAX_BATCH = 5_000


class PositionIn(NulFreeModel):
    """One position from a terminal 终端位置点."""

    member_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    at: AwareDatetime
    lng: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    crs: Crs = "wgs84"


@dataclass(frozen=True, slots=True)
class Fix:
    """A stored position 定位点 (WGS-84)."""

    member_id: str
    at: datetime
    lng: float
    lat: float


def to_fixes(batch: list[PositionIn], *, now: datetime, max_future: timedelta = timedelta(minutes=5)) -> list[Fix]:
    """The batch as WGS-84 fixes, in order; points from the future (beyond a clock skew of
    ``max_future``) or older than the track keeps are left out. 转换为 WGS-84，剔除未来点与过期点。"""
    out: list[Fix] = []
    oldest, newest = now - TRACK_KEEP, now + max_future
    for p in batch:
        if not oldest <= p.at <= newest:
            continue
        lng, lat = to_wgs84(p.lng, p.lat, p.crs)
        out.append(Fix(p.member_id, p.at, round(lng, 7), round(lat, 7)))
    return out


def fresh(at: datetime | None, now: datetime) -> bool:
    """Whether a position taken ``at`` is fresh enough to rank by 位置是否新鲜 (≤ 30 min)."""
    return at is not None and now - at <= FRESH_FOR
