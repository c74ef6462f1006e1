"""Tests for shared.locator: point → grid/village/township/county. 点位落图定位。"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import box, shape

from shared.locator import LocateResult, Locator, LocatorDivision

DEMO = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "county.json"


@pytest.fixture(scope="module")
def features() -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads(DEMO.read_text(encoding="utf-8"))
    out: list[dict[str, Any]] = data["divisions"]["features"]
    return out


@pytest.fixture(scope="module")
def locator(features: list[dict[str, Any]]) -> Locator:
    return Locator.from_features(features)


def test_every_grid_centroid_locates_to_its_grid(features: list[dict[str, Any]], locator: Locator) -> None:
    parents = {f["properties"]["code"]: f["properties"]["parent_code"] for f in features}
    grids = [f for f in features if f["properties"]["level"] == "grid"]
    assert len(grids) == locator.count("grid") == 46
    for feature in grids:
        code = feature["properties"]["code"]
        point = shape(feature["geometry"]).centroid
        result = locator.locate(point.x, point.y)
        village = parents[code]
        township = parents[village]
        assert result == LocateResult(grid=code, village=village, township=township, county="330127", level="grid")
        assert result.code == code


def test_points_outside_every_grid(locator: Locator) -> None:
    assert locator.locate(120.15, 30.28) is None  # 杭州西湖, far away
    assert locator.locate(119.1000001, 29.6) is None  # just east of the county
    assert locator.locate(118.9999999, 29.5399999) is None
    assert locator.locate(float("nan"), 29.6) is None


def test_shared_edges_go_to_the_smallest_code(locator: Locator) -> None:
    # 白沙社区 is split at lng 119.006 into two columns; the top row spans lat 29.606666…29.62.
    on_edge = locator.locate(119.006, 29.61)
    assert on_edge is not None and on_edge.grid == "330127001001001"
    # The corner shared by four 白沙社区 grids (001, 002, 003, 004).
    corner = locator.locate(119.006, 29.606666)
    assert corner is not None and corner.grid == "330127001001001"
    # The border between 白沙街道 and 青溪镇 (lng 119.04): 330127001… < 330127101…
    border = locator.locate(119.04, 29.59)
    assert border is not None and border.township == "330127001"
    many = locator.locate_many(np.array([119.006, 119.04]), np.array([29.61, 29.59]))
    assert many == [on_edge, border]


def test_locate_many_equals_locate(locator: Locator) -> None:
    rng = np.random.default_rng(20260501)
    lngs = rng.uniform(118.99, 119.11, 1000)
    lats = rng.uniform(29.53, 29.63, 1000)
    # a few exact edge/vertex coordinates and invalid values too
    lngs[:4] = [119.006, 119.04, 119.0, np.nan]
    lats[:4] = [29.61, 29.59, 29.54, 29.6]
    many = locator.locate_many(lngs, lats)
    single = [locator.locate(x, y) for x, y in zip(lngs, lats, strict=True)]
    assert many == single
    assert sum(r is None for r in many) > 50  # the box is larger than the county
    assert sum(r is not None for r in many) > 600  # ≈ 2/3 of the box is the county


def test_fallback_to_village_and_township() -> None:
    divisions = [
        LocatorDivision("330127", "county", None, box(119.0, 29.5, 119.2, 29.7)),
        LocatorDivision("330127101", "township", "330127", box(119.0, 29.5, 119.2, 29.7)),
        LocatorDivision("330127101201", "village", "330127101", box(119.0, 29.5, 119.1, 29.6)),
        LocatorDivision("330127101201001", "grid", "330127101201", box(119.0, 29.5, 119.05, 29.55)),
        LocatorDivision("330127101202", "village", "330127101", None),  # no geometry: chain only
        LocatorDivision("330127101202001", "grid", "330127101202", box(119.15, 29.65, 119.2, 29.7)),
    ]
    locator = Locator(divisions)
    assert len(locator) == 4 and locator.count("village") == 1
    assert locator.locate(119.01, 29.51) == LocateResult(
        "330127101201001", "330127101201", "330127101", "330127", "grid"
    )
    assert locator.locate(119.08, 29.58) == LocateResult(None, "330127101201", "330127101", "330127", "village")
    assert locator.locate(119.15, 29.6) == LocateResult(None, None, "330127101", "330127", "township")
    grid_without_village_polygon = locator.locate(119.18, 29.68)
    assert grid_without_village_polygon is not None
    assert grid_without_village_polygon.village == "330127101202"
    assert locator.locate(119.3, 29.6) is None
    xs = np.array([119.01, 119.08, 119.15, 119.18, 119.3])
    ys = np.array([29.51, 29.58, 29.6, 29.68, 29.6])
    assert [r.level if r else None for r in locator.locate_many(xs, ys)] == [
        "grid",
        "village",
        "township",
        "grid",
        None,
    ]


def test_multipolygons_and_empty_input() -> None:
    parts = shapely.MultiPolygon([box(0, 0, 1, 1), box(2, 0, 3, 1)])
    locator = Locator([LocatorDivision("110101001001001", "grid", None, parts)])
    hit = locator.locate(2.5, 0.5)
    assert hit is not None and hit.grid == "110101001001001" and hit.village is None
    assert locator.locate(1.5, 0.5) is None
    assert locator.locate_many(np.array([]), np.array([])) == []
    empty = Locator([])
    assert len(empty) == 0 and empty.locate(0.5, 0.5) is None
    assert empty.locate_many(np.array([0.5]), np.array([0.5])) == [None]
    with pytest.raises(ValueError):
        locator.locate_many(np.array([1.0, 2.0]), np.array([1.0]))
