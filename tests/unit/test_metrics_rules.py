"""Pure rules of the metrics service: indicators, periods, case facts, schemes. 考核规则单元测试。

No database, no HTTP. The hand-computed fixture (``test_hand_computed_*``) has its
arithmetic written out so a reader can check every figure.
不依赖数据库与 HTTP；手算用例在注释中写明了每一步算式。
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.metrics.fact_counts import fact_counts, unit_counts
from services.metrics.facts import CaseEventRecord, CaseFact, is_overdue, reduce_events
from services.metrics.indicators import (
    COUNT_COLUMNS,
    INDICATOR_LABELS,
    INDICATORS,
    empty_counts,
    rates_from_counts,
)
from services.metrics.periods import TZ, parse_period, period_between
from services.metrics.scoring import (
    TOWNSHIP_RATING,
    AssessmentScheme,
    IndicatorRow,
    ScoreRow,
    load_schemes,
    score_units,
)

PRESETS = Path(__file__).resolve().parents[2] / "deploy" / "assessment"


def bj(month: int, day: int, hour: int = 9, minute: int = 0, year: int = 2026) -> datetime:
    """A Beijing time. 北京时间。"""
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


# --------------------------------------------------------------------------- event builder


class Case:
    """Builds one case's event list with increasing versions. 按版本递增构造一个案件的事件。"""

    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        self.events: list[dict[str, Any]] = []

    def add(self, type_: str, at: datetime, **data: Any) -> Case:
        version = len(self.events) + 1
        self.events.append(
            {
                "event_id": f"{self.case_id}-{version}",
                "case_id": self.case_id,
                "type": type_,
                "occurred_at": at,
                "version": version,
                "data": data,
            }
        )
        return self

    def fact(self) -> CaseFact:
        return reduce_events(self.events)


def dispatch(case: Case, unit: str, township: str, at: datetime, days: int = 3) -> Case:
    """派遣 with a deadline ``days`` later and a 签收 limit 1 day later. 派遣（期限 days 天后，签收期限 1 天）。"""
    return case.add(
        "case.dispatched",
        at,
        unit=unit,
        township=township,
        matter="暴露垃圾",
        matter_group="市容环境",
        source="cityops",
        urgency="normal",
        time_basis="natural",
        reported_at=(at - timedelta(hours=1)).isoformat(),
        deadline=(at + timedelta(days=days)).isoformat(),
        accept_deadline=(at + timedelta(days=1)).isoformat(),
    )


def finish(case: Case, resolved: datetime) -> Case:
    """办结, 核查通过, 结案. Resolve, verify, close."""
    case.add("case.resolved", resolved)
    case.add("case.verified", resolved + timedelta(hours=2), passed=True)
    return case.add("case.closed", resolved + timedelta(hours=3))


# Outcomes used by the fixture (D = dispatch time; deadline D + 3 days).
# 用例中的案件结局（D 为派遣时间，期限 D+3 天）。
def outcome(case_id: str, unit: str, township: str, kind: str, day: int) -> Case:
    d = bj(11, day)
    c = Case(case_id)
    if kind == "via_rejection":
        # First sent to unit C, C rejects, the rejection is ruled valid, re-dispatched to `unit`, on time.
        # 先派给 C，C 退单且被判定有效，改派给本单位，按期办结。
        dispatch(c, "C", "T2", d)
        c.add("case.rejected", d + timedelta(hours=1), rejected_unit="C", reason="非本单位职责")
        c.add("case.rejection_ruled", d + timedelta(hours=2), rejected_unit="C", valid=True)
        dispatch(c, unit, township, d + timedelta(hours=3))
        c.add("case.accepted", d + timedelta(hours=4))
        return finish(c, d + timedelta(days=1))
    if kind == "via_reassign":
        # First sent to A and accepted there, then reassigned to `unit`, on time. 先派 A 并签收，后改派本单位。
        dispatch(c, "A", "T1", d)
        c.add("case.accepted", d + timedelta(hours=1))
        c.add("case.reassigned", d + timedelta(hours=2), unit=unit, township=township)
        c.add("case.accepted", d + timedelta(hours=3))
        return finish(c, d + timedelta(days=1))
    if kind == "open_not_due":
        # Dispatched 11-28, deadline 12-01 09:00: still open and not due at as_of 12-01 00:00.
        dispatch(c, unit, township, bj(11, 28))
        return c.add("case.accepted", bj(11, 28, 10))
    dispatch(c, unit, township, d)
    c.add("case.accepted", d + timedelta(hours=1))
    if kind == "ontime":
        return finish(c, d + timedelta(days=1))
    if kind == "late":
        return finish(c, d + timedelta(days=5))  # after deadline D+3 → overdue 超期办结
    if kind == "open_overdue":
        return c.add("case.overdue", d + timedelta(days=3, minutes=1))  # never resolved 逾期未办结
    if kind == "rework":
        # Resolved, 核查 fails (返工), resolved again on day D+2, passes: on time, one rework.
        c.add("case.resolved", d + timedelta(days=1))
        c.add("case.verified", d + timedelta(days=1, hours=2), passed=False)
        return finish(c, d + timedelta(days=2))
    if kind == "extended":
        # Extension to D+6 approved; resolved D+5: late for the old deadline, on time for the new one.
        # 延期至 D+6 获批；D+5 办结：超过原期限但在新期限内 → 按期、不超期。
        c.add("case.extension_requested", d + timedelta(days=2), requested_deadline=(d + timedelta(days=6)))
        c.add("case.extended", d + timedelta(days=2, hours=1), deadline=(d + timedelta(days=6)).isoformat())
        return finish(c, d + timedelta(days=5))
    raise AssertionError(kind)


# 20 cases across 3 units (all 综合执法队 enforcement_team; A and B in township T1, C in T2).
# 20 件案件，3 个单位。
FIXTURE: list[tuple[str, str, str, str, int]] = [
    # unit A: 8 cases 8 件
    ("a1", "A", "T1", "ontime", 2),
    ("a2", "A", "T1", "ontime", 3),
    ("a3", "A", "T1", "ontime", 4),
    ("a4", "A", "T1", "via_rejection", 5),  # C rejected it validly → counts for A, not for C
    ("a5", "A", "T1", "rework", 6),
    ("a6", "A", "T1", "extended", 9),
    ("a7", "A", "T1", "late", 10),
    ("a8", "A", "T1", "open_overdue", 11),
    # unit B: 7 cases 7 件
    ("b1", "B", "T1", "ontime", 2),
    ("b2", "B", "T1", "ontime", 3),
    ("b3", "B", "T1", "ontime", 4),
    ("b4", "B", "T1", "ontime", 5),
    ("b5", "B", "T1", "via_reassign", 6),  # reassigned away from A → counts for B
    ("b6", "B", "T1", "extended", 9),
    ("b7", "B", "T1", "late", 10),
    # unit C: 5 cases 5 件 (exactly min_cases → ranked)
    ("c1", "C", "T2", "ontime", 2),
    ("c2", "C", "T2", "ontime", 3),
    ("c3", "C", "T2", "rework", 4),
    ("c4", "C", "T2", "open_not_due", 28),
    ("c5", "C", "T2", "open_overdue", 16),
]
AS_OF = parse_period("2026-11").end  # 2026-12-01 00:00 北京时间, evaluation as of the period's end


@pytest.fixture(scope="module")
def fixture_counts() -> dict[tuple[str, str | None], dict[str, int]]:
    facts = [outcome(*spec).fact() for spec in FIXTURE]
    return unit_counts(facts, AS_OF)


@pytest.fixture(scope="module")
def schemes() -> dict[str, AssessmentScheme]:
    return load_schemes(PRESETS)


def test_hand_computed_counts(fixture_counts: dict[tuple[str, str | None], dict[str, int]]) -> None:
    a, b, c = fixture_counts[("A", "T1")], fixture_counts[("B", "T1")], fixture_counts[("C", "T2")]
    assert set(fixture_counts) == {("A", "T1"), ("B", "T1"), ("C", "T2")}
    assert sum(row["dispatched"] for row in fixture_counts.values()) == 20
    # A: a1–a8 dispatched; a1–a7 resolved; a1–a6 on time; a7 (late) + a8 (open past deadline) overdue;
    #    a5 reworked; a6 extended. A: 派遣 8，办结 7，按期 6，超期 2，返工 1，延期 1。
    assert (a["dispatched"], a["resolved"], a["resolved_on_time"], a["overdue"]) == (8, 7, 6, 2)
    assert (a["reworked"], a["extended"], a["accepted"], a["rejected"]) == (1, 1, 8, 0)
    # B: 7 dispatched, 7 resolved, 6 on time (b7 late), 1 overdue, 0 rework, 1 extended (b6).
    assert (b["dispatched"], b["resolved"], b["resolved_on_time"], b["overdue"]) == (7, 7, 6, 1)
    assert (b["reworked"], b["extended"], b["accepted"]) == (0, 1, 7)
    # C: 5 dispatched (a4 is not C's: rejected validly), 3 resolved all on time, c5 overdue
    #    (c4 open but not due yet), c3 reworked, none extended; C's valid rejection does not count.
    assert (c["dispatched"], c["resolved"], c["resolved_on_time"], c["overdue"]) == (5, 3, 3, 1)
    assert (c["reworked"], c["extended"], c["rejected"], c["closed"]) == (1, 0, 0, 3)


def test_hand_computed_indicators(fixture_counts: dict[tuple[str, str | None], dict[str, int]]) -> None:
    a = rates_from_counts(fixture_counts[("A", "T1")])
    # A: 处置率 7/8 = 0.875; 按期处置率 6/8 = 0.75; 返工率 1/7; 超期率 2/8 = 0.25; 延期率 1/8 = 0.125
    assert a["resolution_rate"] == 0.875
    assert a["ontime_resolution_rate"] == 0.75
    assert a["rework_rate"] == pytest.approx(1 / 7)
    assert a["overdue_rate"] == 0.25
    assert a["extension_rate"] == 0.125
    assert a["acceptance_rate"] == 1.0
    assert a["satisfaction_rate"] is None  # no 回访 → None, not 0 无回访则为 None
    c = rates_from_counts(fixture_counts[("C", "T2")])
    # C: 处置率 3/5 = 0.6; 按期 3/5 = 0.6; 返工率 1/3; 超期率 1/5 = 0.2; 延期率 0/5 = 0
    assert (c["resolution_rate"], c["ontime_resolution_rate"], c["overdue_rate"]) == (0.6, 0.6, 0.2)
    assert c["rework_rate"] == pytest.approx(1 / 3)
    assert c["extension_rate"] == 0.0


def test_hand_computed_scores(
    fixture_counts: dict[tuple[str, str | None], dict[str, int]], schemes: dict[str, AssessmentScheme]
) -> None:
    scheme = schemes["cityops_professional"]  # 处置率30 按期处置率20 (1−返工率)20 (1−超期率)20 (1−延期率)10
    rows = [
        IndicatorRow(unit=u, unit_kind="enforcement_team", township=str(t), counts=counts)
        for (u, t), counts in fixture_counts.items()
    ]
    by_unit = {r.unit: r for r in score_units(rows, scheme)}
    a, b, c = by_unit["A"], by_unit["B"], by_unit["C"]

    # unit A: 8 dispatched
    #   处置率     7/8 = 0.875       × 30 = 26.25
    #   按期处置率 6/8 = 0.75        × 20 = 15.00
    #   1−返工率   1 − 1/7 = 6/7     × 20 = 17.142857
    #   1−超期率   1 − 2/8 = 0.75    × 20 = 15.00
    #   1−延期率   1 − 1/8 = 0.875   × 10 =  8.75
    #   total 26.25 + 15 + 17.142857 + 15 + 8.75 = 82.142857 → 82.14 → B (75 ≤ 82.14 < 90)
    assert a.parts["resolution_rate"] == pytest.approx(26.25)
    assert a.parts["rework_rate"] == pytest.approx(120 / 7)
    assert (a.score, a.grade, a.status, a.cases) == (82.14, "B", "scored", 8)

    # unit B: 7 dispatched
    #   处置率     7/7 = 1           × 30 = 30.00
    #   按期处置率 6/7               × 20 = 17.142857
    #   1−返工率   1 − 0/7 = 1       × 20 = 20.00
    #   1−超期率   1 − 1/7 = 6/7     × 20 = 17.142857
    #   1−延期率   1 − 1/7 = 6/7     × 10 =  8.571429
    #   total 30 + 17.142857 + 20 + 17.142857 + 8.571429 = 92.857143 → 92.86 → A
    assert (b.score, b.grade) == (92.86, "A")

    # unit C: 5 dispatched (= min_cases 5, so ranked)
    #   处置率     3/5 = 0.6         × 30 = 18.00
    #   按期处置率 3/5 = 0.6         × 20 = 12.00
    #   1−返工率   1 − 1/3 = 2/3     × 20 = 13.333333
    #   1−超期率   1 − 1/5 = 0.8     × 20 = 16.00
    #   1−延期率   1 − 0/5 = 1       × 10 = 10.00
    #   total 18 + 12 + 13.333333 + 16 + 10 = 69.333333 → 69.33 → C (60 ≤ 69.33 < 75)
    assert (c.score, c.grade) == (69.33, "C")

    # Ranks: per unit kind B 92.86 > A 82.14 > C 69.33; per township T1: B, A; T2: C.
    assert [(r.unit, r.rank_in_kind) for r in (b, a, c)] == [("B", 1), ("A", 2), ("C", 3)]
    assert (b.rank_in_township, a.rank_in_township, c.rank_in_township) == (1, 2, 1)


def test_min_cases_gives_insufficient_data(schemes: dict[str, AssessmentScheme]) -> None:
    scheme = schemes["cityops_professional"]
    perfect = {**empty_counts(), "dispatched": 4, "resolved": 4, "resolved_on_time": 4}
    middling = {**empty_counts(), "dispatched": 10, "resolved": 6, "resolved_on_time": 5, "overdue": 5}
    rows = [
        IndicatorRow(unit="tiny", unit_kind="township_office", township="T1", counts=perfect),
        IndicatorRow(unit="big", unit_kind="township_office", township="T1", counts=middling),
    ]
    out = {r.unit: r for r in score_units(rows, scheme)}
    tiny = out["tiny"]
    # 4 cases at 100 % must not top the table: 4 < min_cases 5 → 数据不足, no score/grade/rank.
    assert (tiny.status, tiny.status_label) == ("insufficient_data", "数据不足")
    assert (tiny.score, tiny.grade, tiny.rank_in_township, tiny.rank_in_kind) == (None, None, None, None)
    assert tiny.rates["resolution_rate"] == 1.0  # rates are still shown 仍展示各项比率
    # big: 6/10×30 + 5/10×20 + 1×20 + (1−5/10)×20 + 1×10 = 18 + 10 + 20 + 10 + 10 = 68
    assert (out["big"].score, out["big"].grade, out["big"].rank_in_kind) == (68.0, "C", 1)


def test_ties_broken_by_indicator_order(schemes: dict[str, AssessmentScheme]) -> None:
    scheme = schemes["hotline_three_rates"]  # 响应率10 解决率50 满意率40, in that order

    def counts(responded: int, solved: int, satisfied: int) -> dict[str, int]:
        return {
            **empty_counts(),
            "dispatched": 10,
            "responded_in_time": responded,
            "callbacks_valid": 20,
            "solved": solved,
            "satisfied": satisfied,
        }

    rows = [
        # u-y: 8/10×10 + 16/20×50 + 16/20×40 = 8 + 40 + 32 = 80
        IndicatorRow(unit="u-y", unit_kind="county_department", township="T1", counts=counts(8, 16, 16)),
        # u-x: 10/10×10 + 16/20×50 + 15/20×40 = 10 + 40 + 30 = 80 — same score, better 响应率 (first)
        IndicatorRow(unit="u-x", unit_kind="county_department", township="T1", counts=counts(10, 16, 15)),
        # u-a: identical to u-x in every indicator → unit id decides ("u-a" < "u-x")
        IndicatorRow(unit="u-a", unit_kind="county_department", township="T1", counts=counts(10, 16, 15)),
    ]
    for seed in range(5):  # input order must not matter 输入顺序不影响结果
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        out = score_units(shuffled, scheme)
        assert all(r.score == 80.0 for r in out)
        assert [(r.unit, r.rank_in_township, r.rank_in_kind) for r in out] == [
            ("u-a", 1, 1),
            ("u-x", 2, 2),
            ("u-y", 3, 3),
        ]


def test_township_led_scores_per_township_and_missing_rating(schemes: dict[str, AssessmentScheme]) -> None:
    scheme = schemes["stationed_agency_township_led"]
    counts = {
        **empty_counts(),
        "dispatched": 10,
        "resolved": 9,
        "resolved_on_time": 8,
        "responded_in_time": 9,
        "overdue": 1,
        "callbacks_valid": 10,
        "satisfied": 8,
        "basically_satisfied": 1,
    }
    rows = [
        IndicatorRow(unit="police", unit_kind="stationed_agency", township="T1", counts=counts),
        IndicatorRow(unit="police", unit_kind="stationed_agency", township="T2", counts=counts),
        IndicatorRow(unit="office", unit_kind="township_office", township="T1", counts=counts),  # not covered
    ]
    out = {(r.unit, r.township): r for r in score_units(rows, scheme, {("T1", "police"): 80.0})}
    assert set(out) == {("police", "T1"), ("police", "T2")}  # one row per township served 每个乡镇单独计分
    t1 = out[("police", "T1")]
    # 乡镇评价 80/100 × 50 = 40; 按期办结率 8/10 × 20 = 16; 响应率 9/10 × 10 = 9;
    # 满意率 (8 + 0.9×1)/10 = 0.89 × 10 = 8.9; 1−超期率 (1 − 1/10) × 10 = 9
    # total 40 + 16 + 9 + 8.9 + 9 = 82.9 → B
    assert (t1.score, t1.grade, t1.township_rating, t1.rating_missing) == (82.9, "B", 80.0, False)
    assert t1.parts[TOWNSHIP_RATING] == 40.0
    t2 = out[("police", "T2")]
    # T2 gave no rating: never read as 0 → incomplete, partial 42.9, no grade, no rank
    assert (t2.status, t2.rating_missing, t2.missing) == ("incomplete", True, [TOWNSHIP_RATING])
    assert (t2.score, t2.grade, t2.rank_in_kind) == (None, None, None)
    assert t2.partial_score == pytest.approx(42.9)
    with pytest.raises(ValueError, match=r"outside 0\.\.100"):
        score_units(rows, scheme, {("T1", "police"): 120.0})


def test_missing_indicator_makes_row_incomplete(schemes: dict[str, AssessmentScheme]) -> None:
    row = IndicatorRow(
        unit="u", unit_kind="township_office", township="T1", counts={"dispatched": 6, "responded_in_time": 6}
    )
    [out] = score_units([row], schemes["hotline_three_rates"])
    # no valid 回访: 解决率 and 满意率 are None → incomplete, partial 10 (响应率 only)
    assert (out.status, out.missing, out.partial_score, out.score) == (
        "incomplete",
        ["solved_rate", "satisfaction_rate"],
        10.0,
        None,
    )


# --------------------------------------------------------------------------- scheme validation


def _scheme(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "test",
        "name": "测试方案",
        "version": 1,
        "unit_kinds": ["township_office"],
        "indicators": [
            {"indicator": "resolution_rate", "weight": 60},
            {"indicator": "overdue_rate", "weight": 40, "counts_against": True},
        ],
    }
    base.update(overrides)
    return base


def test_valid_scheme_defaults() -> None:
    scheme = AssessmentScheme.model_validate(_scheme())
    assert [(b.grade, b.min_score) for b in scheme.grade_bands] == [
        ("A", 90),
        ("B", 75),
        ("C", 60),
        ("D", 40),
        ("E", 0),
    ]
    assert (scheme.min_cases, scheme.township_rating_weight, scheme.satisfaction_basic_factor) == (5, 0, 0.9)
    assert [scheme.grade(s) for s in (100, 90, 89.99, 75, 60, 40, 39.99, 0)] == list("AABBCDEE")


def test_weights_must_sum_to_100_naming_field_and_sum() -> None:
    bad = _scheme(
        indicators=[
            {"indicator": "resolution_rate", "weight": 60},
            {"indicator": "overdue_rate", "weight": 35, "counts_against": True},
        ]
    )
    with pytest.raises(ValidationError) as info:
        AssessmentScheme.model_validate(bad)
    [error] = info.value.errors()
    assert error["loc"] == ("indicators",)
    assert "95" in error["msg"] and "100" in error["msg"]


def test_township_led_needs_rating_weight_at_least_50() -> None:
    bad = _scheme(
        kind="township_led",
        unit_kinds=["stationed_agency"],
        township_rating_weight=40,
        indicators=[
            {"indicator": "resolution_rate", "weight": 60},
        ],
    )
    with pytest.raises(ValidationError, match="at least 50"):
        AssessmentScheme.model_validate(bad)
    ok = AssessmentScheme.model_validate(
        {**bad, "township_rating_weight": 50, "indicators": [{"indicator": "resolution_rate", "weight": 50}]}
    )
    assert ok.township_rating_weight == 50
    # rating weight + indicators must still sum to 100 合计仍须为 100
    with pytest.raises(ValidationError, match="got 110"):
        AssessmentScheme.model_validate({**bad, "township_rating_weight": 50})
    # a standard scheme has no township rating 普通方案不含乡镇评价
    with pytest.raises(ValidationError, match="only a township_led scheme"):
        AssessmentScheme.model_validate(
            _scheme(township_rating_weight=50, indicators=[{"indicator": "resolution_rate", "weight": 50}])
        )


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        (
            [{"grade": "A", "min_score": 60}, {"grade": "B", "min_score": 75}, {"grade": "C", "min_score": 0}],
            "strictly descending",
        ),
        ({"A": 90, "B": 90, "C": 0}, "strictly descending"),
        ({"A": 90, "B": 50}, "lowest grade band must start at 0"),
        ([{"grade": "A", "min_score": 90}, {"grade": "A", "min_score": 0}], "duplicate grades"),
        ([], "at least one"),
        ({"A": 120, "B": 0}, "less than or equal to 100"),
    ],
)
def test_bad_grade_bands_rejected(bands: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        AssessmentScheme.model_validate(_scheme(grade_bands=bands))
    assert info.value.errors()[0]["loc"][0] == "grade_bands"


@pytest.mark.parametrize(
    ("indicators", "message"),
    [
        ([{"indicator": "happiness_rate", "weight": 100}], "unknown indicator"),
        ([{"indicator": "overdue_rate", "weight": 100}], "counts_against: true"),
        ([{"indicator": "resolution_rate", "weight": 100, "counts_against": True}], "counts_against: false"),
        (
            [{"indicator": "resolution_rate", "weight": 50}, {"indicator": "resolution_rate", "weight": 50}],
            "duplicate indicator",
        ),
        ([], "at least 1 item"),
    ],
)
def test_bad_indicators_rejected(indicators: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AssessmentScheme.model_validate(_scheme(indicators=indicators))


def test_presets_load(schemes: dict[str, AssessmentScheme]) -> None:
    assert set(schemes) >= {"cityops_professional", "hotline_three_rates", "stationed_agency_township_led"}
    cityops = schemes["cityops_professional"]
    assert [(i.indicator, i.weight, i.counts_against) for i in cityops.indicators] == [
        ("resolution_rate", 30, False),
        ("ontime_resolution_rate", 20, False),
        ("rework_rate", 20, True),
        ("overdue_rate", 20, True),
        ("extension_rate", 10, True),
    ]
    hotline = schemes["hotline_three_rates"]
    assert [(i.indicator, i.weight) for i in hotline.indicators] == [
        ("response_rate", 10),
        ("solved_rate", 50),
        ("satisfaction_rate", 40),
    ]
    led = schemes["stationed_agency_township_led"]
    assert (led.kind, led.unit_kinds, led.township_rating_weight) == ("township_led", ["stationed_agency"], 50)
    assert led.township_rating_weight + sum(i.weight for i in led.indicators) == 100
    assert led.headers()[TOWNSHIP_RATING] == "乡镇评价"
    assert cityops.headers()["overdue_rate"] == "1 − 超期率"


def test_load_schemes_versions_and_duplicates(tmp_path: Path) -> None:
    src = (PRESETS / "hotline_three_rates.yaml").read_text(encoding="utf-8")
    (tmp_path / "v1.yaml").write_text(src, encoding="utf-8")
    (tmp_path / "v3.yaml").write_text(src.replace("version: 2", "version: 3"), encoding="utf-8")
    assert load_schemes(tmp_path)["hotline_three_rates"].version == 3  # highest version wins
    (tmp_path / "v3-copy.yaml").write_text(src.replace("version: 2", "version: 3"), encoding="utf-8")
    with pytest.raises(ValueError, match="defined twice"):
        load_schemes(tmp_path)


# --------------------------------------------------------------------------- indicators


def test_rates_from_counts_zero_denominator_is_none() -> None:
    rates = rates_from_counts({})
    assert set(rates) == set(INDICATORS) and all(v is None for v in rates.values())
    rates = rates_from_counts(
        {"dispatched": 4, "resolved": 0, "callbacks_valid": 10, "satisfied": 6, "basically_satisfied": 2, "solved": 7}
    )
    assert rates["resolution_rate"] == 0.0
    assert rates["rework_rate"] is None  # 0 resolved → None, not 0 and not 1
    assert rates["satisfaction_rate"] == pytest.approx((6 + 0.9 * 2) / 10)  # 0.78
    assert rates["solved_rate"] == 0.7
    assert rates_from_counts({"callbacks_valid": 10, "basically_satisfied": 10}, 0.8)[
        "satisfaction_rate"
    ] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="unknown count columns"):
        rates_from_counts({"dispatchd": 1})


def test_registry_has_labels_and_count_columns() -> None:
    assert INDICATOR_LABELS["satisfaction_rate"] == "满意率"
    assert INDICATOR_LABELS["resolution_rate"].startswith("办结率")
    for d in INDICATORS.values():
        assert d.numerator in COUNT_COLUMNS and d.denominator in COUNT_COLUMNS
    assert INDICATORS["rework_rate"].denominator == "resolved"
    assert INDICATORS["solved_rate"].denominator == "callbacks_valid"


# --------------------------------------------------------------------------- case-fact reducer


def rich_case() -> Case:
    """A case touching most event types. 覆盖大部分事件类型的案件。"""
    d = bj(11, 2)
    c = Case("rich")
    dispatch(c, "U1", "T1", d)
    c.add("case.rejected", d + timedelta(hours=1), rejected_unit="U1", reason="非本单位")
    c.add("case.rejection_ruled", d + timedelta(hours=2), rejected_unit="U1", valid=True)
    c.add(
        "case.dispatched",
        d + timedelta(hours=3),
        unit="U2",
        township="T1",
        deadline=(d + timedelta(days=3)).isoformat(),
    )
    c.add("case.accepted", d + timedelta(hours=4))
    c.add("case.cohandler_added", d + timedelta(hours=5), cohandler="U3")
    c.add("case.extension_requested", d + timedelta(days=1), requested_deadline=d + timedelta(days=5))
    c.add("case.extended", d + timedelta(days=1, hours=1), deadline=(d + timedelta(days=5)).isoformat())
    c.add("case.supervised", d + timedelta(days=2))
    c.add("case.resolved", d + timedelta(days=3))
    c.add("case.verified", d + timedelta(days=3, hours=1), passed=False)
    c.add("case.resolved", d + timedelta(days=4))
    c.add("case.verified", d + timedelta(days=4, hours=1), passed=True)
    c.add("case.closed", d + timedelta(days=4, hours=2))
    c.add("case.callback_recorded", d + timedelta(days=5), satisfaction="basically_satisfied", solved=True)
    return c


def test_reducer_shuffled_and_duplicated_events_give_identical_fact() -> None:
    events = rich_case().events
    expected = reduce_events(events)
    assert expected.unit == "U2" and expected.reworks == 1 and expected.extensions == 1
    rng = random.Random(20261120)
    for _ in range(50):
        noisy = events + rng.sample(events, k=rng.randint(1, len(events)))  # duplicates 重复投递
        rng.shuffle(noisy)  # out of order 乱序
        records = [CaseEventRecord.model_validate(e) if rng.random() < 0.5 else e for e in noisy]
        assert reduce_events(records) == expected
    assert reduce_events(events + events) == expected  # idempotent 幂等


def test_reducer_copies_of_one_event_id_with_different_data_fold_the_same_in_any_order() -> None:
    """Copies of one event id that disagree (a corrupt redelivery) are told apart by their canonical
    data, so whichever copy arrives first the same one is folded. 同一事件 id 的不同副本按规范化数据取舍。"""
    events = rich_case().events
    accepted = next(e for e in events if e["type"] == "case.accepted")
    twin = {**accepted, "data": {**accepted["data"], "note": "另一副本"}}
    assert twin["data"] != accepted["data"] and twin["event_id"] == accepted["event_id"]
    one = reduce_events([*events, twin])
    assert reduce_events([twin, *events]) == one
    assert reduce_events([*reversed(events), twin]) == one
    first = sorted([CaseEventRecord.model_validate(accepted), CaseEventRecord.model_validate(twin)],
                   key=CaseEventRecord.sort_key)[0]  # fmt: skip
    assert sorted([CaseEventRecord.model_validate(twin), CaseEventRecord.model_validate(accepted)],
                  key=CaseEventRecord.sort_key)[0] == first  # fmt: skip


def test_reducer_rich_case_fields() -> None:
    fact = rich_case().fact()
    d = bj(11, 2)
    assert fact.dispatched_at == d  # the first dispatch 首次派遣
    assert fact.accepted_at == d + timedelta(hours=4)
    assert fact.resolved_at == d + timedelta(days=4)  # the last resolution, the one 核查 accepted
    assert fact.closed_at == d + timedelta(days=4, hours=2)
    assert fact.deadline == d + timedelta(days=5)  # after the approved extension
    assert fact.reported_at == d - timedelta(hours=1)
    assert (fact.rejections, fact.rejected_by, fact.units_rejected_validly) == (1, ["U1"], ["U1"])
    assert (fact.supervisions, fact.cohandlers, fact.satisfaction, fact.solved) == (
        1,
        ["U3"],
        "basically_satisfied",
        True,
    )
    assert not fact.overdue and fact.township == "T1" and fact.matter == "暴露垃圾"
    counts = fact_counts(fact, AS_OF)
    assert counts["rejected"] == 0  # U1's valid rejection does not count against U2 (nor U1)
    assert (counts["reworked"], counts["resolved_on_time"], counts["basically_satisfied"]) == (1, 1, 1)


def test_a_fold_starts_from_the_defaults_and_leaves_the_next_fold_alone() -> None:
    """Each fold starts from ``CaseFact``'s defaults with lists of its own: a rich case's rejections,
    co-handlers and hand dispatches do not show in the plain case folded after it. 每次折叠从默认值开始，
    列表互不共享。"""
    plain = Case("plain")
    dispatch(plain, "A", "T1", bj(11, 2))
    alone = plain.fact()
    rich = rich_case()
    rich.add("case.reassigned", bj(11, 3), unit="U4", actor={"role": "dispatcher", "name": "d1"})
    assert rich.fact().hand_dispatches and rich.fact().cohandlers == ["U3"]
    after = plain.fact()
    assert after == alone
    assert (after.rejected_by, after.cohandlers, after.hand_dispatches) == ([], [], [])
    blank = CaseFact(case_id=alone.case_id).model_dump()
    assert {k: v for k, v in after.model_dump().items() if k in ("rejected_by", "cohandlers")} == {
        k: blank[k] for k in ("rejected_by", "cohandlers")
    }


def test_event_record_aliases() -> None:
    record = CaseEventRecord.model_validate(
        {"event_id": "e1", "case_id": "k", "type": "case.accepted", "time": "2026-11-02T09:00:00", "case_version": 3}
    )
    assert record.occurred_at == bj(11, 2) and record.version == 3 and record.data == {}


def test_reassignment_moves_the_unit() -> None:
    c = Case("r")
    dispatch(c, "A", "T1", bj(11, 2))
    c.add("case.accepted", bj(11, 2, 10))
    c.add("case.reassigned", bj(11, 2, 11), unit="B", deadline=bj(11, 6).isoformat())
    fact = c.fact()
    assert fact.unit == "B" and fact.deadline == bj(11, 6)
    assert fact.accepted_at is None  # B has not signed for it yet B 尚未签收
    assert unit_counts([fact], AS_OF)[("B", "T1")]["accepted"] == 0
    assert ("A", "T1") not in unit_counts([fact], AS_OF)


def test_escalation_moves_the_case_to_the_department() -> None:
    c = Case("w")
    dispatch(c, "office", "T1", bj(11, 2))
    c.add("case.escalated", bj(11, 3), department="county-housing", report_deadline=bj(11, 4).isoformat())
    c.add("case.reported_in", bj(11, 3, 15))
    fact = c.fact()
    assert (fact.unit, fact.unit_kind, fact.escalated_to, fact.escalations) == (
        "county-housing",
        "county_department",
        "county-housing",
        1,
    )
    assert fact.accepted_at == fact.reported_in_at == bj(11, 3, 15)  # 报到 = the department's 签收
    assert fact_counts(fact, AS_OF)["accepted_in_time"] == 1


def test_invalid_rejection_counts_against_the_unit() -> None:
    c = Case("x")
    dispatch(c, "A", "T1", bj(11, 2))
    c.add("case.rejected", bj(11, 2, 10), rejected_unit="A", reason="不归我管")
    c.add("case.rejection_ruled", bj(11, 2, 11), rejected_unit="A", valid=False)
    fact = c.fact()
    assert (fact.unit, fact.units_rejected_invalidly) == ("A", ["A"])
    assert fact_counts(fact, AS_OF)["rejected"] == 1
    assert rates_from_counts(fact_counts(fact, AS_OF))["rejection_rate"] == 1.0


def test_rework_counts() -> None:
    fact = outcome("rw", "A", "T1", "rework", 2).fact()
    assert fact.reworks == 1 and fact.resolved_at == bj(11, 4)
    # a 重办 after an unsatisfied 回访 is counted apart 重办单独计数
    c = outcome("ro", "A", "T1", "ontime", 2)
    c.add("case.callback_recorded", bj(11, 4), satisfaction="unsatisfied", solved=False)
    c.add("case.reopened", bj(11, 4, 10), reason="回访不满意")
    fact = c.fact()
    assert (fact.reworks, fact.reopens, fact.resolved_at, fact.closed_at) == (0, 1, None, None)
    assert fact.satisfaction == "unsatisfied"  # kept until a new 回访


def test_extension_moves_the_deadline() -> None:
    fact = outcome("ext", "A", "T1", "extended", 2).fact()
    d = bj(11, 2)
    assert fact.deadline == d + timedelta(days=6) and fact.extensions == 1
    assert fact.resolved_at == d + timedelta(days=5)  # after the old deadline D+3, before the new D+6
    assert not fact.overdue
    counts = fact_counts(fact, AS_OF)
    assert (counts["resolved_on_time"], counts["overdue"], counts["extended"]) == (1, 0, 1)


def test_is_overdue_as_of() -> None:
    c = Case("o")
    dispatch(c, "A", "T1", bj(11, 2))  # deadline 11-05 09:00
    fact = c.fact()
    assert not fact.overdue
    assert not is_overdue(fact, bj(11, 5, 9))
    assert is_overdue(fact, bj(11, 5, 9, 1))  # open past the deadline 逾期未办结
    finish(c, bj(11, 6))
    late = c.fact()
    assert late.overdue  # resolved after the deadline 超期办结
    assert not is_overdue(late, bj(11, 4))  # as of 11-04 it was open and not yet due
    assert fact_counts(late, bj(11, 4))["resolved"] == 0


def test_population_rules() -> None:
    self_handled = Case("s").add("case.self_handled", bj(11, 2), unit="grid-7", township="T1").fact()
    assert self_handled.self_handled and self_handled.closed_at == bj(11, 2)
    assert fact_counts(self_handled, AS_OF) == empty_counts()  # never dispatched 未派遣不计
    merged = dispatch(Case("m"), "A", "T1", bj(11, 2)).add("case.merged", bj(11, 2, 10), into="k1").fact()
    assert merged.merged_into == "k1" and fact_counts(merged, AS_OF)["dispatched"] == 0
    later = dispatch(Case("l"), "A", "T1", bj(12, 2)).fact()
    assert fact_counts(later, AS_OF)["dispatched"] == 0  # dispatched after as_of


def test_reducer_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no events"):
        reduce_events([])
    events = dispatch(Case("p"), "A", "T1", bj(11, 2)).events + dispatch(Case("q"), "A", "T1", bj(11, 2)).events
    with pytest.raises(ValueError, match="several cases"):
        reduce_events(events)


# --------------------------------------------------------------------------- periods


@pytest.mark.parametrize(
    ("pid", "kind", "start", "end"),
    [
        ("2026-11-20", "day", bj(11, 20, 0), bj(11, 21, 0)),
        ("2026-12-31", "day", bj(12, 31, 0), bj(1, 1, 0, year=2027)),
        ("2026-W01", "week", bj(12, 29, 0, year=2025), bj(1, 5, 0)),
        ("2026-W47", "week", bj(11, 16, 0), bj(11, 23, 0)),
        ("2026-W53", "week", bj(12, 28, 0), bj(1, 4, 0, year=2027)),
        ("2026-11", "month", bj(11, 1, 0), bj(12, 1, 0)),
        ("2026-12", "month", bj(12, 1, 0), bj(1, 1, 0, year=2027)),
        ("2026-02", "month", bj(2, 1, 0), bj(3, 1, 0)),
        ("2026-Q1", "quarter", bj(1, 1, 0), bj(4, 1, 0)),
        ("2026-Q4", "quarter", bj(10, 1, 0), bj(1, 1, 0, year=2027)),
        ("2026", "year", bj(1, 1, 0), bj(1, 1, 0, year=2027)),
        ("2026-11-01..2026-11-30", "range", bj(11, 1, 0), bj(12, 1, 0)),
    ],
)
def test_parse_period(pid: str, kind: str, start: datetime, end: datetime) -> None:
    period = parse_period(pid)
    assert (period.id, period.kind, period.start, period.end) == (pid, kind, start, end)
    assert period.start.utcoffset() == timedelta(hours=8)
    assert period.start in period and period.end not in period  # half-open [start, end)


@pytest.mark.parametrize(
    "pid",
    [
        "",
        "2026-13",
        "2026-00",
        "2026-W00",
        "2025-W53",
        "2026-W54",
        "2026-Q5",
        "2026-Q0",
        "2026-02-30",
        "26",
        "2026-1",
        "2026/11",
        "2026-11-20..2026-11-19",
        "last month",
    ],
)
def test_parse_period_rejects_bad_ids(pid: str) -> None:
    with pytest.raises(ValueError, match="invalid period") as info:
        parse_period(pid)
    assert repr(pid) in str(info.value) or pid in str(info.value)


def test_period_between_explicit() -> None:
    p = period_between(bj(11, 3, 8, 30), bj(11, 3, 17, 30))
    assert (p.start, p.end, p.kind) == (bj(11, 3, 8, 30), bj(11, 3, 17, 30), "range")
    assert parse_period(p.id) == p  # the id parses back 编号可再解析
    assert period_between("2026-11-01", "2026-11-30") == parse_period("2026-11-01..2026-11-30")
    assert parse_period("2026-11").default_as_of(bj(11, 15)) == bj(11, 15)
    assert parse_period("2026-11").default_as_of(bj(12, 15)) == bj(12, 1, 0)


def test_score_row_is_serialisable(schemes: dict[str, AssessmentScheme]) -> None:
    row = IndicatorRow(unit="u", unit_kind="township_office", township="T1", counts={"dispatched": 1})
    [out] = score_units([row], schemes["cityops_professional"])
    assert ScoreRow.model_validate_json(out.model_dump_json()) == out


def test_passed_verification_that_closes_the_case_sets_closed_at() -> None:
    """Dispatch closes a case with the passing 核查 itself (no separate case.closed event)."""
    from datetime import UTC, datetime, timedelta

    from services.metrics.facts import CaseEventRecord, reduce_events

    t0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    case = "00000000-0000-0000-0000-0000000000c1"
    base = {"unit": "u1", "township": "t1", "source": "12345", "matter": "SR001", "urgency": "normal"}
    events = [
        CaseEventRecord(event_id="e1", case_id=case, type="case.dispatched", occurred_at=t0, version=2,
                        data={**base, "state": "dispatched", "deadline": (t0 + timedelta(days=3)).isoformat(),
                              "time_basis": "natural", "reported_at": t0.isoformat()}),
        CaseEventRecord(event_id="e2", case_id=case, type="case.accepted", occurred_at=t0 + timedelta(hours=1),
                        version=3, data={**base, "state": "accepted"}),
        CaseEventRecord(event_id="e3", case_id=case, type="case.resolved", occurred_at=t0 + timedelta(hours=2),
                        version=4, data={**base, "state": "resolved"}),
        CaseEventRecord(event_id="e4", case_id=case, type="case.verified", occurred_at=t0 + timedelta(hours=3),
                        version=5, data={**base, "state": "closed", "verification_passed": True}),
    ]
    fact = reduce_events(events)
    assert fact.closed_at == t0 + timedelta(hours=3)
    assert fact.resolved_at == t0 + timedelta(hours=2)
