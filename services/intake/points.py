"""A producer's point → the event's :class:`~shared.events.GeoPoint` (坐标转换): WGS-84 plus what was sent.

Pure, shared by every source's normalisation. 纯函数，各来源标准化共用。
"""

from __future__ import annotations

from services.intake.schemas import Location
from shared.events import GeoPoint
from shared.geo import to_wgs84


def point(location: Location | None) -> GeoPoint | None:
    """The WGS-84 point of ``location`` (rounded to 1e-7°), the original kept beside it. 转为 WGS-84。"""
    if location is None:
        return None
    lng, lat = to_wgs84(location.lng, location.lat, location.crs)
    return GeoPoint(
        lng=round(lng, 7),
        lat=round(lat, 7),
        original_crs=location.crs,
        original_lng=location.lng,
        original_lat=location.lat,
    )
