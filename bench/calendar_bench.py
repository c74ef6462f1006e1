"""Benchmark 基准测试: 1 M working-hour durations 工作时时长 vs a plain subtraction floor.

Times ``working_hours_between`` on 1 M random intervals in 2025–2026 (aware Asia/Shanghai
datetimes, lengths up to 30 days) against the floor of 1 M ``(end - start).total_seconds()``
on the same intervals in the same run, and prints both figures and the ratio. No assertions.

Run: ``.venv/bin/python bench/calendar_bench.py [N]``
"""

from __future__ import annotations

import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.calendar import SHANGHAI, load_calendar, working_hours_between


def make_intervals(n: int, seed: int = 2026) -> list[tuple[datetime, datetime]]:
    """``n`` random (start, end) pairs with starts in 2025–2026 and lengths 0–30 days."""
    rng = random.Random(seed)
    lo = datetime(2025, 1, 1, tzinfo=SHANGHAI)
    span = int((datetime(2027, 1, 1, tzinfo=SHANGHAI) - lo).total_seconds())
    out = []
    for _ in range(n):
        start = lo + timedelta(seconds=rng.randrange(span))
        out.append((start, start + timedelta(seconds=rng.randrange(30 * 86400))))
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    intervals = make_intervals(n)
    calendar = load_calendar()
    calendar.working_hours_between(*intervals[0])  # build the per-day table outside the timing

    t0 = time.perf_counter()
    floor_total = 0.0
    for start, end in intervals:
        floor_total += (end - start).total_seconds()
    floor = time.perf_counter() - t0

    t0 = time.perf_counter()
    method_total = 0.0
    between = calendar.working_hours_between
    for start, end in intervals:
        method_total += between(start, end)
    method = time.perf_counter() - t0

    t0 = time.perf_counter()
    module_total = 0.0
    for start, end in intervals:
        module_total += working_hours_between(start, end)
    module = time.perf_counter() - t0

    print(f"intervals:                               {n:,}")
    print(f"floor (end - start).total_seconds():     {floor:8.3f} s  ({floor / n * 1e9:6.0f} ns/call)")
    print(f"WorkingCalendar.working_hours_between:   {method:8.3f} s  ({method / n * 1e9:6.0f} ns/call)")
    print(f"shared.calendar.working_hours_between:   {module:8.3f} s  ({module / n * 1e9:6.0f} ns/call)")
    print(f"ratio method / floor:                    {method / floor:8.1f} x")
    print(f"ratio module function / floor:           {module / floor:8.1f} x")
    print(f"(checksums: {floor_total / 3600:.1f} natural h, {method_total:.1f} working h)")


if __name__ == "__main__":
    main()
