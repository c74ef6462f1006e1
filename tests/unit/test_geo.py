"""Tests for shared.geo: WGS-84 / 火星坐标 GCJ-02 / 百度坐标 BD-09 / CGCS2000 and helpers.

Reference vectors are published outputs of independent implementations of the same
public formulas:

* googollee/eviltransform ``python/test.py`` — WGS-84 → GCJ-02 for Shanghai, Shenzhen,
  Beijing (given there as lat, lng; reordered here to lng, lat);
* wandergis/coordtransform README — conversions of (116.404, 39.915), the coordinate Baidu's
  own API demos use for 天安门. Its gcj02→wgs84 and bd09→gcj02 are the *naive* closed-form
  inverses, so they are used here to show the iterative inverse is more exact, not as
  exact expected values.

The 天安门 pairs are the commonly quoted rounded values: WGS-84 (116.391248, 39.907283) ↔
GCJ-02 (116.397499, 39.908692), 高德 POI (116.397499, 39.908722) and Baidu's rounded
(116.404, 39.915); they are checked with tolerances that match their rounding.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from shared.geo import (
    Crs,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    haversine_m,
    in_china_bbox,
    out_of_china,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

Point = tuple[float, float]
Conv = Callable[[float, float], Point]

# 1e-6 degree is ~0.1 m: tight enough for the published 6–15 digit vectors.
DEG_TOL = 1e-6


def dist(a: Point, b: Point) -> float:
    return haversine_m(a[0], a[1], b[0], b[1])


def random_china_points(n: int, seed: int) -> list[Point]:
    rng = random.Random(seed)
    return [(rng.uniform(73.0, 135.5), rng.uniform(3.5, 53.6)) for _ in range(n)]


RANDOM_POINTS = random_china_points(1000, seed=20240601)


# --------------------------------------------------------------------------- forward vectors


@pytest.mark.parametrize(
    ("name", "wgs", "gcj"),
    [
        # googollee/eviltransform python/test.py
        ("shanghai", (121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
        ("shenzhen", (113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
        ("beijing", (116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
        # wandergis/coordtransform README: wgs84ToGcj02(116.404, 39.915)
        ("coordtransform", (116.404, 39.915), (116.41024449916938, 39.91640428150164)),
    ],
)
def test_wgs84_to_gcj02_published_vectors(name: str, wgs: Point, gcj: Point) -> None:
    got = wgs84_to_gcj02(*wgs)
    assert got == pytest.approx(gcj, abs=DEG_TOL), name
    # and the exact inverse gets back to the published WGS-84 input
    assert dist(gcj02_to_wgs84(*gcj), wgs) < 0.01


@pytest.mark.parametrize(
    ("conv", "src", "expected"),
    [
        # wandergis/coordtransform README
        (gcj02_to_bd09, (116.404, 39.915), (116.41036949371029, 39.92133699351021)),
        (wgs84_to_bd09, (116.404, 39.915), (116.41662724378733, 39.922699552216216)),
    ],
)
def test_bd09_forward_published_vectors(conv: Conv, src: Point, expected: Point) -> None:
    assert conv(*src) == pytest.approx(expected, abs=DEG_TOL)


@pytest.mark.parametrize(
    ("conv", "src", "naive_published", "forward"),
    [
        # coordtransform's gcj02ToWgs84 / bd09ToGcj02 of (116.404, 39.915): closed-form inverses
        (gcj02_to_wgs84, (116.404, 39.915), (116.39775550083061, 39.91359571849836), wgs84_to_gcj02),
        (bd09_to_gcj02, (116.404, 39.915), (116.39762729119315, 39.90865673957631), gcj02_to_bd09),
    ],
)
def test_iterative_inverse_beats_published_naive_inverse(
    conv: Conv, src: Point, naive_published: Point, forward: Conv
) -> None:
    ours = conv(*src)
    # close to the published naive inverse (they differ only by the naive method's error)
    assert dist(ours, naive_published) < 2.0
    # but ours maps back onto the input exactly, the naive one does not
    assert dist(forward(*ours), src) < 0.001
    assert dist(forward(*naive_published), src) > dist(forward(*ours), src)


def test_naive_gcj_inverse_error_is_metres_so_iteration_matters() -> None:
    """At Shanghai the one-step inverse is ~2 m off; ours is sub-millimetre."""
    wgs = (121.47, 31.23)
    gcj = wgs84_to_gcj02(*wgs)
    fwd_at_gcj = wgs84_to_gcj02(*gcj)
    naive = (2 * gcj[0] - fwd_at_gcj[0], 2 * gcj[1] - fwd_at_gcj[1])
    assert dist(naive, wgs) > 1.0
    assert dist(gcj02_to_wgs84(*gcj), wgs) < 0.001


# --------------------------------------------------------------------------- 天安门

TAM_WGS = (116.391248, 39.907283)
TAM_GCJ_QUOTED = (116.397499, 39.908692)
TAM_GCJ_AMAP_POI = (116.397499, 39.908722)  # 高德 POI for 天安门
TAM_BD_BAIDU = (116.404, 39.915)  # Baidu's rounded 天安门 (3 decimals)
# Half a 0.001° step in each axis at lat 40°: ~43 m in lng, ~56 m in lat → ~70 m diagonal.
BAIDU_ROUNDING_M = 70.0


def test_tiananmen_wgs_to_gcj_matches_quoted_pair() -> None:
    # the quoted pair is rounded; the formula reproduces it to ~1.2 m
    assert dist(wgs84_to_gcj02(*TAM_WGS), TAM_GCJ_QUOTED) < 2.0
    assert dist(to_wgs84(*TAM_GCJ_QUOTED, "gcj02"), TAM_WGS) < 2.0


def test_tiananmen_amap_poi_is_near_quoted_wgs() -> None:
    assert dist(to_wgs84(*TAM_GCJ_AMAP_POI, "gcj02"), TAM_WGS) < 5.0


@pytest.mark.parametrize("bd", [wgs84_to_bd09(*TAM_WGS), gcj02_to_bd09(*TAM_GCJ_AMAP_POI)])
def test_tiananmen_bd09_matches_baidu_published(bd: Point) -> None:
    assert dist(bd, TAM_BD_BAIDU) < BAIDU_ROUNDING_M


def test_tiananmen_baidu_to_wgs_lands_on_tiananmen() -> None:
    assert dist(to_wgs84(*TAM_BD_BAIDU, "bd09"), TAM_WGS) < BAIDU_ROUNDING_M


@pytest.mark.parametrize(
    ("conv", "lo", "hi"),
    [
        (wgs84_to_gcj02, 300.0, 800.0),  # GCJ-02 offset at Beijing: several hundred metres
        (wgs84_to_bd09, 300.0, 1500.0),  # BD-09 adds Baidu's own offset on top
    ],
)
def test_offset_at_beijing_is_hundreds_of_metres(conv: Conv, lo: float, hi: float) -> None:
    assert lo <= dist(conv(*TAM_WGS), TAM_WGS) <= hi


def test_bd09_offset_exceeds_gcj02_at_beijing() -> None:
    assert dist(wgs84_to_bd09(*TAM_WGS), TAM_WGS) > dist(wgs84_to_gcj02(*TAM_WGS), TAM_WGS)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("name", "forward", "inverse"),
    [
        ("wgs84->gcj02->wgs84", wgs84_to_gcj02, gcj02_to_wgs84),
        ("wgs84->bd09->wgs84", wgs84_to_bd09, bd09_to_wgs84),
        ("gcj02->bd09->gcj02", gcj02_to_bd09, bd09_to_gcj02),
    ],
)
def test_round_trip_random_points_in_china(name: str, forward: Conv, inverse: Conv) -> None:
    worst = max(dist(inverse(*forward(*p)), p) for p in RANDOM_POINTS)
    assert worst < 0.5, f"{name}: worst round-trip error {worst:.6f} m"


@pytest.mark.parametrize(("crs", "forward"), [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_to_wgs84_inverts_forward_random_points(crs: Crs, forward: Conv) -> None:
    worst = max(dist(to_wgs84(*forward(*p), crs), p) for p in RANDOM_POINTS)
    assert worst < 0.5, f"{crs}: worst error {worst:.6f} m"


def test_random_points_are_actually_shifted() -> None:
    """Guard against a vacuous round trip: every point in the box moves (min ~57 m here)."""
    assert min(dist(wgs84_to_gcj02(*p), p) for p in RANDOM_POINTS) > 10.0


# --------------------------------------------------------------------------- pass-through

OUTSIDE = [
    ("tokyo", (139.69, 35.69)),
    ("london", (-0.1276, 51.5072)),
    ("new_york", (-74.006, 40.7128)),
    ("sydney", (151.2093, -33.8688)),
]
ALL_CONVS: list[Conv] = [
    wgs84_to_gcj02,
    gcj02_to_wgs84,
    gcj02_to_bd09,
    bd09_to_gcj02,
    wgs84_to_bd09,
    bd09_to_wgs84,
]


@pytest.mark.parametrize(("name", "p"), OUTSIDE)
@pytest.mark.parametrize("conv", ALL_CONVS)
def test_outside_china_unchanged(name: str, p: Point, conv: Conv) -> None:
    assert out_of_china(*p), name
    assert conv(*p) == p


@pytest.mark.parametrize(("name", "p"), OUTSIDE)
@pytest.mark.parametrize("crs", ["wgs84", "gcj02", "bd09", "cgcs2000"])
def test_to_wgs84_outside_china_unchanged(name: str, p: Point, crs: Crs) -> None:
    assert to_wgs84(*p, crs) == p


@pytest.mark.parametrize("crs", ["wgs84", "cgcs2000"])
@pytest.mark.parametrize("p", [TAM_WGS, (121.4737, 31.2304), (87.6, 43.8), *RANDOM_POINTS[:20]])
def test_wgs84_and_cgcs2000_pass_through(crs: Crs, p: Point) -> None:
    assert to_wgs84(*p, crs) == p


def test_to_wgs84_rejects_unknown_crs() -> None:
    with pytest.raises(ValueError, match="unknown crs"):
        to_wgs84(116.4, 39.9, "epsg3857")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bounding boxes


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        ((116.391248, 39.907283), True),  # 北京
        ((87.6, 43.8), True),  # 乌鲁木齐
        ((109.5, 18.25), True),  # 三亚
        ((73.0, 3.5), True),  # corner, inclusive
        ((135.5, 53.6), True),  # corner, inclusive
        ((72.999, 39.9), False),
        ((135.501, 39.9), False),
        ((116.4, 3.499), False),
        ((116.4, 53.601), False),
        ((139.69, 35.69), False),  # Tokyo
        ((-0.1276, 51.5072), False),  # London
        ((39.907283, 116.391248), False),  # lat/lng swapped
        ((math.nan, 39.9), False),
        ((116.4, math.inf), False),
    ],
)
def test_in_china_bbox(p: Point, expected: bool) -> None:
    assert in_china_bbox(*p) is expected


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        ((116.4, 39.9), False),
        ((72.004, 0.8293), False),  # inclusive corner
        ((137.8347, 55.8271), False),  # inclusive corner
        ((72.0039, 30.0), True),
        ((137.8348, 30.0), True),
        ((100.0, 0.8292), True),
        ((100.0, 55.8272), True),
        ((139.69, 35.69), True),
    ],
)
def test_out_of_china_rectangle(p: Point, expected: bool) -> None:
    assert out_of_china(*p) is expected


# --------------------------------------------------------------------------- haversine

ONE_DEG_M = 6371008.8 * math.pi / 180.0  # one degree of great circle on the mean sphere


@pytest.mark.parametrize(
    ("a", "b", "expected_m", "tol_m"),
    [
        # 北京 天安门 – 上海 人民广场: ~1068 km (published great-circle distance)
        ((116.3913, 39.9073), (121.4737, 31.2304), 1_068_000.0, 5_000.0),
        # London – Paris: ~344 km
        ((-0.1276, 51.5072), (2.3522, 48.8566), 344_000.0, 2_000.0),
        # exact on the sphere
        ((116.0, 39.0), (116.0, 40.0), ONE_DEG_M, 1e-6),
        ((0.0, 0.0), (1.0, 0.0), ONE_DEG_M, 1e-6),
        ((0.0, 0.0), (90.0, 0.0), 90 * ONE_DEG_M, 1e-6),
        ((0.0, 0.0), (180.0, 0.0), 180 * ONE_DEG_M, 1e-6),  # antipodal
        ((0.0, 90.0), (0.0, -90.0), 180 * ONE_DEG_M, 1e-6),  # pole to pole
        ((116.4, 39.9), (116.4, 39.9), 0.0, 0.0),
    ],
)
def test_haversine_known_distances(a: Point, b: Point, expected_m: float, tol_m: float) -> None:
    assert haversine_m(*a, *b) == pytest.approx(expected_m, abs=tol_m)
    assert haversine_m(*b, *a) == pytest.approx(expected_m, abs=tol_m)  # symmetric


def test_haversine_50m_scale() -> None:
    """Duplicate merging works at ~50 m: 0.00045° of latitude is ~50 m."""
    d = haversine_m(116.4, 39.9, 116.4, 39.9 + 0.00045)
    assert d == pytest.approx(50.0, abs=0.1)
