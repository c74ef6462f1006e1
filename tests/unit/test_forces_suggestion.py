"""Who to send 派单建议 (services/dispatch/forces/suggestion.py): the order and the reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.dispatch.forces.availability import Availability, Duty
from services.dispatch.forces.positions import Fix
from services.dispatch.forces.suggestion import Candidate, CaseSpot, TeamCandidate, suggest

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
SPOT = CaseSpot(lng=119.05, lat=29.60, grid="G1")
# 0.001° of latitude on the mean sphere (R = 6 371 008.8 m): 2πR/360 × 0.001 = 111.195 m.
M_PER_MILLIDEGREE = 111.195


def duty(hours_ago: float) -> Availability:
    d = Duty(since=NOW - timedelta(hours=hours_ago), until=NOW + timedelta(hours=8), label="白班", unit="U")
    return Availability(True, d, False, "在班")


OFF = Availability(False, None, False, "不在班")


def member(
    mid: str,
    *,
    north: float | None = None,
    age_min: int = 5,
    role: str = "member",
    tasks: int = 0,
    grids: tuple[str, ...] = (),
    on_since_h: float = 2,
    avail: Availability | None = None,
) -> Candidate:
    pos = None
    if north is not None:
        pos = Fix(mid, NOW - timedelta(minutes=age_min), 119.05, 29.60 + north / 1000)
    return Candidate(mid, mid, role, grids, avail or duty(on_since_h), pos, tasks)


def test_fresh_positions_nearest_first_then_grid_workers_then_the_rest() -> None:
    members = [
        member("far", north=3),  # 3 × 111.195 = 333.6 m
        member("near", north=1),  # 111.2 m
        member("stale", north=0.1, age_min=31),  # 31 min old: not fresh, ranked as having no position
        member("gw", role="grid_worker", grids=("G1",)),  # covers the case's grid, no position
        member("gw-other", role="grid_worker", grids=("G2",)),
        member("off", north=0.5, avail=OFF),  # not on duty: never suggested
    ]
    got = suggest(SPOT, members, [], NOW)
    assert [s.id for s in got] == ["near", "far", "gw", "gw-other", "stale"]
    assert [s.tier for s in got] == [1, 1, 3, 3, 3]
    assert round(got[0].distance_m or 0) == round(M_PER_MILLIDEGREE)  # 111 m
    assert round(got[1].distance_m or 0) == round(3 * M_PER_MILLIDEGREE)  # 334 m
    assert got[0].reasons[0].startswith("距案发点约 111 米（5 分钟前定位）")
    assert got[2].reasons[0].startswith("网格员，负责本网格 G1")
    assert got[4].reasons[0].startswith("无新鲜位置")


def test_grid_workers_come_first_among_the_rest_for_grid_matters() -> None:
    spot = CaseSpot(lng=119.05, lat=29.60, grid="G1", grid_matter=True)
    members = [member("a", tasks=0), member("gw", role="grid_worker", grids=("G1",), tasks=3), member("b", north=9)]
    got = suggest(spot, members, [], NOW)
    # fresh position (tier 1) first, then the grid worker of G1 (tier 2, grid matter), then the rest (tier 3).
    assert [(s.id, s.tier) for s in got] == [("b", 1), ("gw", 2), ("a", 3)]


def test_ties_by_open_tasks_then_longest_on_duty_then_id() -> None:
    members = [
        member("c", tasks=2, on_since_h=5),
        member("b", tasks=1, on_since_h=1),
        member("a", tasks=1, on_since_h=3),  # same tasks as b, on duty longer → before b
        member("d", tasks=1, on_since_h=3),  # same as a: by id
    ]
    got = suggest(SPOT, members, [], NOW)
    assert [s.id for s in got] == ["a", "d", "b", "c"]
    assert got[0].reasons[-1] == "在办任务 1 件 / 1 open task(s) in hand"
    # on duty since 3 h before 10:00 Shanghai time = 07:00 on 12-04
    assert got[0].reasons[-2].startswith("12-04 07:00 起在班")


def test_a_team_ranks_as_its_best_available_member() -> None:
    members = [member("m1", north=2), member("m2", north=1), member("m3", avail=OFF), member("m4", north=4)]
    teams = [TeamCandidate("T1", "一中队", ("m1", "m3")), TeamCandidate("T2", "二中队", ("m3",))]
    got = suggest(SPOT, members, teams, NOW)
    # T1 follows its best available member m1 (222 m); T2 has nobody available and is left out.
    assert [(s.kind, s.id) for s in got] == [("member", "m2"), ("member", "m1"), ("team", "T1"), ("member", "m4")]
    t1 = got[2]
    assert t1.reasons[0].startswith("1/2 人在岗可派") and round(t1.distance_m or 0) == round(2 * M_PER_MILLIDEGREE)
    assert t1.members == ("m1", "m3")


def test_without_a_case_point_nobody_is_ranked_by_distance() -> None:
    spot = CaseSpot(lng=None, lat=None, grid=None)
    got = suggest(spot, [member("x", north=1), member("y")], [], NOW)
    assert all(s.distance_m is None and s.tier == 3 for s in got)
    assert [s.id for s in got] == ["x", "y"]
