"""Duplicate detection (重复件合并): nearby same-matter reports and repeat 12345 callers; lock keys."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.dispatch.duplicates import (
    DuplicateMatch,
    OpenCase,
    Report,
    find_duplicate,
    lock_keys,
    search_box,
)
from shared.geo import haversine_m

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=CST)
LNG, LAT = 119.06, 29.60
M_PER_DEG = 111_320.0


def east(metres: float) -> float:
    """Longitude ``metres`` east of LNG at LAT."""
    return LNG + metres / (M_PER_DEG * math.cos(math.radians(LAT)))


def case(case_id: str = "C1", **kw: object) -> OpenCase:
    base: dict[str, object] = {"matter": "SR001", "reported_at": T0, "lng": LNG, "lat": LAT, "grid": "G1"}
    base.update(kw)
    return OpenCase(case_id=case_id, **base)  # type: ignore[arg-type]


def report(**kw: object) -> Report:
    base: dict[str, object] = {
        "matter": "SR001",
        "reported_at": T0 + timedelta(hours=1),
        "lng": east(10),
        "lat": LAT,
        "grid": "G1",
        "source": "cityops",
    }
    base.update(kw)
    return Report(**base)  # type: ignore[arg-type]


CASES: list[tuple[str, Report, list[OpenCase], str | None, str | None]] = [
    ("10 m apart, same matter", report(), [case()], "C1", "nearby"),
    ("49 m", report(lng=east(49)), [case()], "C1", "nearby"),
    ("51 m", report(lng=east(51)), [case()], None, None),
    ("other matter", report(matter="SR002"), [case()], None, None),
    ("unknown matter never merges by distance", report(matter=None), [case(matter=None)], None, None),
    ("23 h later", report(reported_at=T0 + timedelta(hours=23)), [case()], "C1", "nearby"),
    ("25 h later", report(reported_at=T0 + timedelta(hours=25)), [case()], None, None),
    ("reported before the open case (late delivery)", report(reported_at=T0 - timedelta(hours=2)), [case()], "C1",
     "nearby"),
    ("no point", report(lng=None, lat=None), [case()], None, None),
    ("earliest of two wins", report(), [case("C2", reported_at=T0 + timedelta(minutes=30)), case("C1")], "C1",
     "nearby"),
    ("repeat caller, same grid, days later", report(source="12345", phone_hash="h1", lng=east(400),
     reported_at=T0 + timedelta(days=5)), [case(phone_hash="h1")], "C1", "repeat_caller"),
    ("repeat caller, other grid and far", report(source="12345", phone_hash="h1", lng=east(400), grid="G2",
     reported_at=T0 + timedelta(days=5)), [case(phone_hash="h1")], None, None),
    ("repeat caller, other matter", report(source="12345", phone_hash="h1", matter="SR002",
     reported_at=T0 + timedelta(days=5)), [case(phone_hash="h1")], None, None),
    ("another caller", report(source="12345", phone_hash="h2", lng=east(400), reported_at=T0 + timedelta(days=5)),
     [case(phone_hash="h1")], None, None),
    ("phone hash only counts for 12345", report(source="cityops", phone_hash="h1", lng=east(400),
     reported_at=T0 + timedelta(days=5)), [case(phone_hash="h1")], None, None),
]  # fmt: skip


@pytest.mark.parametrize(("new", "open_cases", "into", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_find_duplicate(new: Report, open_cases: list[OpenCase], into: str | None, reason: str | None) -> None:
    match = find_duplicate(new, open_cases)
    if into is None:
        assert match is None
        return
    assert isinstance(match, DuplicateMatch)
    assert (match.case_id, match.reason) == (into, reason)
    assert match.explanation_zh


def test_distance_and_window_are_configurable() -> None:
    assert find_duplicate(report(lng=east(80)), [case()], distance_m=100) is not None
    assert find_duplicate(report(reported_at=T0 + timedelta(hours=3)), [case()], window=timedelta(hours=2)) is None


def test_search_box_contains_the_circle() -> None:
    min_lng, min_lat, max_lng, max_lat = search_box(LNG, LAT, 50)
    for bearing in range(0, 360, 15):
        dx, dy = 50 * math.sin(math.radians(bearing)), 50 * math.cos(math.radians(bearing))
        lng = LNG + dx / (M_PER_DEG * math.cos(math.radians(LAT)))
        lat = LAT + dy / M_PER_DEG
        assert min_lng <= lng <= max_lng and min_lat <= lat <= max_lat


def test_two_reports_within_the_distance_always_share_a_lock_key() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        lng, lat = 119.0 + rng.random() * 0.1, 29.5 + rng.random() * 0.1
        angle, dist = rng.random() * 2 * math.pi, rng.random() * 50
        lng2 = lng + dist * math.sin(angle) / (M_PER_DEG * math.cos(math.radians(lat)))
        lat2 = lat + dist * math.cos(angle) / M_PER_DEG
        assert haversine_m(lng, lat, lng2, lat2) <= 50.5
        a = lock_keys(matter="SR001", lng=lng, lat=lat)
        b = lock_keys(matter="SR001", lng=lng2, lat=lat2)
        assert set(a) & set(b)
        assert a == sorted(a) and len(a) <= 4


def test_lock_keys_differ_by_matter_and_include_the_caller() -> None:
    a = lock_keys(matter="SR001", lng=LNG, lat=LAT)
    b = lock_keys(matter="SR002", lng=LNG, lat=LAT)
    assert not set(a) & set(b)
    with_caller = lock_keys(matter="SR001", lng=LNG, lat=LAT, phone_hash="h1")
    assert set(a) < set(with_caller)
    assert lock_keys(matter=None, lng=None, lat=None) == []
    assert all(-(2**63) <= k < 2**63 for k in itertools.chain(a, b, with_caller))


def test_lock_keys_in_time_slots_are_shared_within_the_window_and_not_across_months() -> None:
    """Two reports within the window always share a key, whatever their order or slot boundary; a
    history import's report (months earlier) shares none with today's. 时间窗内必共享键；相隔数月不共享。"""
    window = timedelta(hours=24)
    rng = random.Random(11)
    for _ in range(500):
        first = datetime(2026, 12, 5, tzinfo=UTC) + timedelta(seconds=rng.randrange(5 * 86400))
        second = first + timedelta(seconds=rng.randrange(int(window.total_seconds()) + 1))
        a = lock_keys(matter="SR001", lng=LNG, lat=LAT, reported_at=first, window=window)
        b = lock_keys(matter="SR001", lng=LNG, lat=LAT, reported_at=second, window=window)
        assert set(a) & set(b), (first, second)
    today = lock_keys(matter="SR001", lng=LNG, lat=LAT, reported_at=datetime(2026, 12, 5, 9, tzinfo=UTC))
    imported = lock_keys(matter="SR001", lng=LNG, lat=LAT, reported_at=datetime(2026, 3, 5, 9, tzinfo=UTC))
    assert not set(today) & set(imported)
    # the repeat-caller key has no time limit 重复来电键不分时段
    assert set(
        lock_keys(matter=None, lng=None, lat=None, phone_hash="h", reported_at=datetime(2026, 3, 5, tzinfo=UTC))
    ) == set(lock_keys(matter=None, lng=None, lat=None, phone_hash="h", reported_at=datetime(2026, 12, 5, tzinfo=UTC)))
