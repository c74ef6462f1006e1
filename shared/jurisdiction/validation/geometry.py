"""Checks of division boundaries 边界几何校验: readable, non-empty, valid, in WGS-84 range, no overlapping grids."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.validation import explain_validity

from shared.jurisdiction.limits import OVERLAP_TOLERANCE_DEG2
from shared.jurisdiction.model import DivisionFeature
from shared.jurisdiction.problems import Problem, join_path

__all__ = ["check_geometries"]

#: A grid of a village: (feature index, code, shapely geometry). 村内网格。
_Grid = tuple[int, str, Any]


def check_geometries(
    features: Sequence[DivisionFeature], first_index: Mapping[str, int]
) -> tuple[list[Problem], dict[str, Any]]:
    """Problems of the boundaries, and the valid shapely geometry of each code (first feature only).

    边界问题，以及每个编码（首个要素）的有效几何，供快照复用。Grids need a polygon;
    grids of one village must not overlap. 网格须有面；同村网格不得交叠。
    """
    problems: list[Problem] = []
    parsed = _parse(features, problems)
    geometries: dict[str, Any] = {}
    grids_by_village: dict[str, list[_Grid]] = defaultdict(list)
    valid_flags = shapely.is_valid(np.array([g for _, g in parsed], dtype=object)) if parsed else []
    for (i, geom), ok in zip(parsed, valid_flags, strict=True):
        props = features[i].properties
        gpath = join_path("divisions", "features", i, "geometry")
        minx, miny, maxx, maxy = geom.bounds
        if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)) or (
            minx < -180 or maxx > 180 or miny < -90 or maxy > 90
        ):
            problems.append(Problem(f"{gpath}.coordinates", "coordinates outside the WGS-84 range (lng ±180, lat ±90)"))
            continue
        if not ok:
            problems.append(Problem(gpath, f"invalid polygon: {explain_validity(geom)}"))
            continue
        if first_index.get(props.code) == i:
            geometries[props.code] = geom
            if props.level == "grid" and props.parent_code is not None:
                grids_by_village[props.parent_code].append((i, props.code, geom))
    for village, grids in grids_by_village.items():
        problems.extend(_overlaps(village, grids))
    return problems, geometries


def _parse(features: Sequence[DivisionFeature], problems: list[Problem]) -> list[tuple[int, Any]]:
    """Readable, non-empty geometries by feature index; problems of the others go to ``problems``.

    解析几何：缺失（网格）、无法解析或为空的几何记为问题。
    """
    parsed: list[tuple[int, Any]] = []
    for i, feature in enumerate(features):
        props = feature.properties
        gpath = join_path("divisions", "features", i, "geometry")
        if feature.geometry is None:
            if props.level == "grid":
                problems.append(
                    Problem(gpath, f"grid {props.code} has no geometry (point-less grid): a grid needs a polygon")
                )
            continue
        try:
            geom = shape(feature.geometry.model_dump())
        except Exception as exc:  # malformed coordinate arrays / 坐标数组格式错误
            problems.append(Problem(f"{gpath}.coordinates", f"unreadable {feature.geometry.type} coordinates: {exc}"))
            continue
        if geom.is_empty:
            problems.append(Problem(gpath, f"{props.level} {props.code} has an empty geometry"))
            continue
        parsed.append((i, geom))
    return parsed


def _overlaps(village: str, grids: Sequence[_Grid]) -> list[Problem]:
    """Pairs of grids of one village that overlap by more than the tolerance. 同村网格交叠。"""
    if len(grids) < 2:
        return []
    geoms = np.array([g for _, _, g in grids], dtype=object)
    tree = shapely.STRtree(geoms)
    pairs = tree.query(geoms, predicate="intersects")
    keep = pairs[0] < pairs[1]
    left, right = pairs[0][keep], pairs[1][keep]
    if not len(left):
        return []
    problems: list[Problem] = []
    areas = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    for a, b, area in zip(left, right, areas, strict=True):
        if area > OVERLAP_TOLERANCE_DEG2:
            ia, code_a, _ = grids[int(a)]
            ib, code_b, _ = grids[int(b)]
            first, second = (ia, code_a), (ib, code_b)
            if second[0] < first[0]:
                first, second = second, first
            problems.append(
                Problem(
                    join_path("divisions", "features", second[0], "geometry"),
                    f"grid {second[1]} overlaps grid {first[1]} (divisions.features[{first[0]}]) "
                    f"of village {village} by {area:.3g} deg²",
                )
            )
    return problems
