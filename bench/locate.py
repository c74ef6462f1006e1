"""Benchmark the grid locator / 网格定位性能测试.

Builds a synthetic county of ``side × side`` slightly irregular quadrilateral
grids (default 100 × 100 = 10 000 grids, shared jittered vertices so the
lattice tiles exactly), then in the same run times:

* :meth:`shared.locator.Locator.locate_many` on ``--points`` random points
  (default 1 000 000), vectorised over a shapely 2 STRtree;
* the naive floor: a loop over all 10 000 polygons, each tested with
  ``shapely.intersects_xy`` against a ``--naive-points`` subsample (default
  10 000) — extrapolated to points/s, since the full run would take minutes;
* single-point :meth:`Locator.locate` calls on a subsample, for reference.

It prints points/s for each and the ratio. No assertions: this is a measurement.

构建 100×100 个略不规则的四边形网格，在同一次运行中测量批量定位（100 万点）、
逐多边形暴力判断（子样本外推）与逐点定位的吞吐量，并给出倍数。仅测量，不做断言。

Usage / 用法::

    .venv/bin/python bench/locate.py [--side 100] [--points 1000000] [--naive-points 10000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import shapely

from shared.locator import Locator, LocatorDivision

COUNTY = "330127"
ORIGIN = (119.0, 29.5)  # 浙江西部 / western Zhejiang
STEP = 0.002  # ≈ 200 m grids


def build_lattice(side: int, seed: int) -> tuple[list[LocatorDivision], np.ndarray]:
    """Divisions (county, 4 townships, villages of 10 × 10 grids, grids) and the grid polygons.

    构建区划（县、4 个镇、每 10×10 网格一个村、网格）及网格多边形数组（按编码排序）。
    """
    rng = np.random.default_rng(seed)
    xs = ORIGIN[0] + np.arange(side + 1) * STEP
    ys = ORIGIN[1] + np.arange(side + 1) * STEP
    vx, vy = np.meshgrid(xs, ys, indexing="ij")
    jitter = rng.uniform(-0.3, 0.3, size=(2, side + 1, side + 1)) * STEP
    vx, vy = vx + jitter[0], vy + jitter[1]

    divisions = [LocatorDivision(COUNTY, "county", None, None)]
    half = max(side // 2, 1)
    townships = {(a, b): f"{COUNTY}{100 + 2 * a + b + 1:03d}" for a in range(2) for b in range(2)}
    divisions += [LocatorDivision(code, "township", COUNTY, None) for code in townships.values()]
    villages: dict[tuple[int, int], str] = {}
    grids: list[tuple[str, object]] = []
    counters: dict[str, int] = {}
    for i in range(side):
        for j in range(side):
            block = (i // 10, j // 10)
            if block not in villages:
                township = townships[(min(i // half, 1), min(j // half, 1))]
                number = sum(1 for v in villages.values() if v.startswith(township)) + 201
                villages[block] = f"{township}{number:03d}"
                divisions.append(LocatorDivision(villages[block], "village", township, None))
            village = villages[block]
            counters[village] = counters.get(village, 0) + 1
            ring = [
                (vx[i, j], vy[i, j]),
                (vx[i + 1, j], vy[i + 1, j]),
                (vx[i + 1, j + 1], vy[i + 1, j + 1]),
                (vx[i, j + 1], vy[i, j + 1]),
            ]
            code = f"{village}{counters[village]:03d}"
            polygon = shapely.Polygon(ring)
            grids.append((code, polygon))
            divisions.append(LocatorDivision(code, "grid", village, polygon))
    grids.sort(key=lambda item: item[0])
    return divisions, np.array([polygon for _, polygon in grids], dtype=object)


def naive_first_hits(polygons: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Brute force: every polygon against every point; smallest index wins. 暴力逐多边形判断。"""
    out = np.full(len(xs), -1, dtype=np.int64)
    for index, polygon in enumerate(polygons):
        hit = shapely.intersects_xy(polygon, xs, ys)
        out[hit & (out < 0)] = index
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="grid locator benchmark / 网格定位性能测试")
    parser.add_argument("--side", type=int, default=100, help="grids per side (side² grids)")
    parser.add_argument("--points", type=int, default=1_000_000, help="points for locate_many")
    parser.add_argument("--naive-points", type=int, default=10_000, help="subsample for the brute-force loop")
    parser.add_argument("--single-points", type=int, default=20_000, help="subsample for single locate()")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    t0 = time.perf_counter()
    divisions, polygons = build_lattice(args.side, args.seed)
    t1 = time.perf_counter()
    locator = Locator(divisions)
    t2 = time.perf_counter()
    print(
        f"lattice: {len(polygons)} grids ({args.side}×{args.side}) built in {t1 - t0:.2f} s; "
        f"locator index built in {t2 - t1:.2f} s"
    )

    rng = np.random.default_rng(args.seed + 1)
    margin = 2 * STEP
    span = args.side * STEP
    lngs = rng.uniform(ORIGIN[0] - margin, ORIGIN[0] + span + margin, args.points)
    lats = rng.uniform(ORIGIN[1] - margin, ORIGIN[1] + span + margin, args.points)

    t0 = time.perf_counter()
    results = locator.locate_many(lngs, lats)
    fast_s = time.perf_counter() - t0
    fast_rate = args.points / fast_s
    located = sum(r is not None for r in results)
    print(
        f"locate_many: {args.points} points in {fast_s:.3f} s → {fast_rate:,.0f} points/s "
        f"({located} located, {args.points - located} outside)"
    )

    t0 = time.perf_counter()
    locator.locate_indices(lngs, lats)
    raw_s = time.perf_counter() - t0
    print(f"locate_indices (no result objects): {args.points / raw_s:,.0f} points/s")

    n_naive = min(args.naive_points, args.points)
    sub_x, sub_y = lngs[:n_naive], lats[:n_naive]
    t0 = time.perf_counter()
    naive = naive_first_hits(polygons, sub_x, sub_y)
    naive_s = time.perf_counter() - t0
    naive_rate = n_naive / naive_s
    print(
        f"brute force: loop over {len(polygons)} polygons × shapely.intersects_xy on a {n_naive}-point "
        f"subsample in {naive_s:.3f} s → {naive_rate:,.0f} points/s (extrapolated; "
        f"the full {args.points} points would take ≈ {args.points / naive_rate:,.0f} s)"
    )
    fast_sub = [r.grid if r is not None else None for r in results[:n_naive]]
    codes = _codes(divisions)
    naive_codes = [codes[i] if i >= 0 else None for i in naive]
    agree = sum(a == b for a, b in zip(fast_sub, naive_codes, strict=True))
    print(f"agreement locate_many vs brute force on the subsample: {agree}/{n_naive}")

    n_single = min(args.single_points, args.points)
    t0 = time.perf_counter()
    for x, y in zip(lngs[:n_single], lats[:n_single], strict=True):
        locator.locate(x, y)
    single_s = time.perf_counter() - t0
    print(f"locate (one point per call): {n_single / single_s:,.0f} points/s on {n_single} points")

    print(
        f"ratio locate_many / brute force: {fast_rate / naive_rate:,.0f}×  "
        f"(target ≥ 200,000 points/s: {'met' if fast_rate >= 200_000 else 'NOT met'})"
    )


def _codes(divisions: list[LocatorDivision]) -> list[str]:
    """Grid codes in index order (sorted). 按下标排列的网格编码。"""
    return sorted(d.code for d in divisions if d.level == "grid")


if __name__ == "__main__":
    main()
