"""Coordinate normalisation to WGS-84 and small geo helpers (pure functions, no I/O).

Chinese map SDKs do not give WGS-84:

* 火星坐标 GCJ-02 (高德, 腾讯) — WGS-84 with the state-mandated obfuscation offset
  (several hundred metres) applied inside mainland China;
* 百度坐标 BD-09 (百度) — GCJ-02 with Baidu's further offset on top;
* 国家大地坐标系 CGCS2000 (天地图, 数字城管) — differs from WGS-84 by centimetres and is
  treated as WGS-84 (pass-through).

The GCJ-02 forward transform (WGS-84 → GCJ-02) is the well-known public formula on the
Krasovsky ellipsoid. Its inverse has no closed form: the naive "subtract the offset
computed at the GCJ point" inverse is off by up to a few metres (≈2 m at Shanghai), so
:func:`gcj02_to_wgs84` refines it by fixed-point iteration of the forward transform,
which converges to well under a millimetre in a few steps. BD-09 → GCJ-02 is refined the
same way.

A point outside the standard mainland-China rectangle (:func:`out_of_china`) is not
shifted by GCJ-02 rules, nor by BD-09's, so :func:`to_wgs84` returns it unchanged for every
CRS. The rectangle is coarse by design (it is what the SDKs use), so
e.g. Seoul lies inside it and is shifted, while Tokyo and London are not.

All functions take and return ``(lng, lat)`` in decimal degrees, longitude first.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

__all__ = [
    "Crs",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "haversine_m",
    "in_china_bbox",
    "out_of_china",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

Crs = Literal["wgs84", "gcj02", "bd09", "cgcs2000"]
"""Coordinate reference systems accepted in an event's ``location.crs``."""

CRS_VALUES: tuple[str, ...] = get_args(Crs)

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323
# Baidu's BD-09 constant.
_X_PI = math.pi * 3000.0 / 180.0
# Mean Earth radius (IUGG), metres.
EARTH_RADIUS_M = 6371008.8

# Inverse iteration: stop when the correction is below ~1e-6 m, or after this many steps.
_INV_TOL_DEG = 1e-11
_INV_MAX_ITER = 20


def out_of_china(lng: float, lat: float) -> bool:
    """True if the point is outside the rectangle where GCJ-02 offsets apply.

    Standard check used by the map SDKs: lng 72.004–137.8347, lat 0.8293–55.8271.
    """
    return not (72.004 <= lng <= 137.8347 and 0.8293 <= lat <= 55.8271)


def in_china_bbox(lng: float, lat: float) -> bool:
    """True if the point lies in China's bounding box (input validation).

    lng 73.0–135.5, lat 3.5–53.6, bounds inclusive. Non-finite values are rejected.
    """
    return 73.0 <= lng <= 135.5 and 3.5 <= lat <= 53.6


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lng(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def _gcj02_delta(lng: float, lat: float) -> tuple[float, float]:
    """GCJ-02 offset (dlng, dlat) in degrees at a WGS-84 point (no out-of-China check)."""
    dlat = _transform_lat(lng - 105.0, lat - 35.0)
    dlng = _transform_lng(lng - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1.0 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlng = (dlng * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return dlng, dlat


def wgs84_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    """WGS-84 → 火星坐标 GCJ-02. Points outside China are returned unchanged."""
    if out_of_china(lng, lat):
        return lng, lat
    dlng, dlat = _gcj02_delta(lng, lat)
    return lng + dlng, lat + dlat


def gcj02_to_wgs84(lng: float, lat: float) -> tuple[float, float]:
    """火星坐标 GCJ-02 → WGS-84 by iterative inverse of the forward transform.

    Starts from the naive inverse and applies fixed-point steps
    ``w ← w − (forward(w) − gcj)`` until the correction is below ~1 µm; the result
    reproduces the input under :func:`wgs84_to_gcj02` to sub-millimetre level.
    Points outside China are returned unchanged.
    """
    if out_of_china(lng, lat):
        return lng, lat
    dlng, dlat = _gcj02_delta(lng, lat)
    w_lng, w_lat = lng - dlng, lat - dlat
    for _ in range(_INV_MAX_ITER):
        dlng, dlat = _gcj02_delta(w_lng, w_lat)
        err_lng = w_lng + dlng - lng
        err_lat = w_lat + dlat - lat
        w_lng -= err_lng
        w_lat -= err_lat
        if abs(err_lng) < _INV_TOL_DEG and abs(err_lat) < _INV_TOL_DEG:
            break
    return w_lng, w_lat


def _gcj02_to_bd09_raw(lng: float, lat: float) -> tuple[float, float]:
    z = math.sqrt(lng * lng + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lng) + 0.000003 * math.cos(lng * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def gcj02_to_bd09(lng: float, lat: float) -> tuple[float, float]:
    """火星坐标 GCJ-02 → 百度坐标 BD-09 (the widely published Baidu formula).

    Points outside China are returned unchanged (Baidu serves WGS-84 abroad).
    """
    if out_of_china(lng, lat):
        return lng, lat
    return _gcj02_to_bd09_raw(lng, lat)


def _bd09_to_gcj02_approx(lng: float, lat: float) -> tuple[float, float]:
    x = lng - 0.0065
    y = lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def bd09_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    """百度坐标 BD-09 → 火星坐标 GCJ-02.

    The usual closed-form inverse is refined by fixed-point iteration of
    :func:`gcj02_to_bd09` (the closed form alone is off by up to ~0.2 m), so that the
    round trip is exact to sub-millimetre level. Points outside China are returned unchanged.
    """
    if out_of_china(lng, lat):
        return lng, lat
    g_lng, g_lat = _bd09_to_gcj02_approx(lng, lat)
    for _ in range(_INV_MAX_ITER):
        b_lng, b_lat = _gcj02_to_bd09_raw(g_lng, g_lat)
        err_lng = b_lng - lng
        err_lat = b_lat - lat
        g_lng -= err_lng
        g_lat -= err_lat
        if abs(err_lng) < _INV_TOL_DEG and abs(err_lat) < _INV_TOL_DEG:
            break
    return g_lng, g_lat


def wgs84_to_bd09(lng: float, lat: float) -> tuple[float, float]:
    """WGS-84 → 百度坐标 BD-09 (via GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lng, lat))


def bd09_to_wgs84(lng: float, lat: float) -> tuple[float, float]:
    """百度坐标 BD-09 → WGS-84 (via GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lng, lat))


def to_wgs84(lng: float, lat: float, crs: Crs) -> tuple[float, float]:
    """Normalise a point given in ``crs`` to WGS-84 ``(lng, lat)``.

    ``wgs84`` and ``cgcs2000`` (国家大地坐标系 CGCS2000, centimetres from WGS-84) pass
    through unchanged; ``gcj02`` (火星坐标) and ``bd09`` (百度坐标) are inverted.

    Raises:
        ValueError: if ``crs`` is not one of :data:`Crs`.
    """
    if crs == "wgs84" or crs == "cgcs2000":
        return lng, lat
    if crs == "gcj02":
        return gcj02_to_wgs84(lng, lat)
    if crs == "bd09":
        return bd09_to_wgs84(lng, lat)
    raise ValueError(f"unknown crs {crs!r}; expected one of {CRS_VALUES}")


def haversine_m(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    """Great-circle distance in metres between two WGS-84 points (haversine, spherical Earth).

    Uses the IUGG mean radius 6 371 008.8 m; error vs. the ellipsoid is ≤ ~0.5 %.
    """
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lng2 - lng1)
    h = math.sin(dphi / 2.0) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
