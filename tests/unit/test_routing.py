"""Routing (派遣路由) on the demo county 青溪县: the five steps of jurisdiction.md, table-driven.

派遣路由测试（演示县青溪县）：定位、定性、规则、属地默认、时限；候选与退单跳过；单位缺失转人工。
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from services.dispatch.candidates import candidates
from services.dispatch.placement import locate_event
from services.dispatch.routing import RoutingDecision, route
from shared.calendar import WorkingCalendar, load_calendar
from shared.events import CallerRef, GeoPoint, IncidentReported
from shared.geo import to_wgs84
from shared.jurisdiction import JurisdictionBundle, JurisdictionSnapshot, Rule

ROOT = Path(__file__).resolve().parents[2]
DEMO = json.loads((ROOT / "deploy" / "demo" / "county.json").read_text(encoding="utf-8"))
CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=CST)  # a Tuesday 周二

BAISHA, QINGXI, FENGLIN = "330127001", "330127101", "330127102"
G_BAISHA_SCHOOL = "330127001001001"  # 白沙社区第1网格 (rule school-vendors)
G_BAISHA = "330127001003005"  # 桥西社区第5网格
G_QINGXI = "330127101001003"  # 青溪社区第3网格
G_FENGLIN = "330127102001001"  # 枫林社区第1网格
G_SHIMEN = "330127102201002"  # 石门村第2网格

# 12345 category codes of the demo mapping. 演示映射中的 12345 分类编码。
K_SR001 = "010101"  # 占道经营 (dept-cgj, devolved to all three)
K_WJ002 = "010202"  # 违法占用耕地建房 (dept-zrzyj, devolved to 青溪镇 only)
K_SC001 = "020101"  # 无照经营 (dept-scjgj, devolved nowhere; agencies 白沙所 / 青溪所 covering 青溪+枫林)
K_ZJ004 = "090104"  # 建筑工地扬尘 (dept-zjj, no stationed agency)
K_SL001 = "080101"  # 非法采砂 (rule sand-mining in 青溪/枫林)
K_ZJ005 = "090105"  # 路灯不亮 (function "urban": only 白沙 has such a unit)


@pytest.fixture(scope="module")
def snap() -> JurisdictionSnapshot:
    return JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=5, rules_version=9)


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return load_calendar(county="330127")


def centre(snap: JurisdictionSnapshot, code: str) -> tuple[float, float]:
    division = snap.division(code)
    assert division is not None and division.geometry is not None
    point = division.geometry.representative_point()
    return float(point.x), float(point.y)


def event(
    *,
    source: str = "12345",
    key: str = K_SR001,
    point: tuple[float, float] | None = None,
    crs: str = "wgs84",
    raw: tuple[float, float] | None = None,
    title: str | None = None,
    description: str = "群众反映问题",
    urgency: str = "normal",
    appeal_type: str | None = "complaint",
    self_handled: bool = False,
    phone_hash: str | None = None,
    **codes: Any,
) -> IncidentReported:
    """An incident.reported payload, WGS-84 point already converted (as intake sends it)."""
    location = None
    if point is not None:
        original = raw or point
        location = GeoPoint(
            lng=point[0], lat=point[1], original_crs=crs, original_lng=original[0], original_lat=original[1]
        )
    return IncidentReported(
        event_id=uuid.uuid4(),
        source=source,
        source_id=f"S-{uuid.uuid4().hex[:8]}",
        reported_at=NOW - timedelta(minutes=5),
        received_at=NOW - timedelta(minutes=4),
        title=title,
        description=description,
        category_codes={"code": key},
        category_key=key,
        location=location,
        urgency=urgency,
        reporter_kind="grid_worker" if source == "gridworker" else "caller",
        appeal_type=appeal_type if source == "12345" else None,
        caller=CallerRef(phone_hash=phone_hash) if phone_hash else None,
        self_handled=self_handled,
        **codes,
    )


def decide(snap: JurisdictionSnapshot, cal: WorkingCalendar, ev: IncidentReported, **kw: Any) -> RoutingDecision:
    return route(ev, snap, now=kw.pop("now", NOW), calendar=cal, **kw)


# --------------------------------------------------------------------------- step 4: jurisdiction 属地默认

JURISDICTION_CASES = [
    # (id, category key, grid, expected unit, decided_by, devolved)
    ("SR001 devolved in 青溪", K_SR001, G_QINGXI, "330127101-zfd", "devolved", True),
    ("WJ002 devolved in 青溪", K_WJ002, G_QINGXI, "330127101-zfd", "devolved", True),
    ("WJ002 not devolved in 枫林 → agency", K_WJ002, G_FENGLIN, "pz-zrzys-qingxi", "stationed_agency", False),
    ("WJ002 not devolved in 白沙 → its own agency", K_WJ002, G_BAISHA, "pz-zrzys-baisha", "stationed_agency", False),
    ("SC001 青溪所 covers 青溪", K_SC001, G_QINGXI, "pz-scjgs-qingxi", "stationed_agency", False),
    ("SC001 青溪所 covers 枫林 too", K_SC001, G_SHIMEN, "pz-scjgs-qingxi", "stationed_agency", False),
    ("SC001 白沙所 in 白沙", K_SC001, G_BAISHA, "pz-scjgs-baisha", "stationed_agency", False),
    ("ZJ004 no agency → county department 吹哨", K_ZJ004, G_QINGXI, "dept-zjj", "county_department", False),
    ("SL001 in 白沙: no rule, no agency → 水利局", K_SL001, G_BAISHA, "dept-slj", "county_department", False),
]


@pytest.mark.parametrize(
    ("key", "grid", "unit", "decided_by", "devolved"),
    [c[1:] for c in JURISDICTION_CASES],
    ids=[c[0] for c in JURISDICTION_CASES],
)
def test_default_by_jurisdiction(
    snap: JurisdictionSnapshot,
    cal: WorkingCalendar,
    key: str,
    grid: str,
    unit: str,
    decided_by: str,
    devolved: bool,
) -> None:
    d = decide(snap, cal, event(key=key, point=centre(snap, grid)))
    assert (d.outcome, d.unit, d.decided_by, d.devolved) == ("dispatch", unit, decided_by, devolved)
    assert d.placement is not None and d.placement.grid == grid and d.placement.method == "point"
    assert d.unit_kind == snap.unit(unit).kind  # type: ignore[union-attr]
    assert d.rule_id is None and d.triage_reason is None
    assert (d.jurisdiction_version, d.rules_version) == (5, 9)
    assert d.explanation["decided_by"] == decided_by
    assert [s["step"] for s in d.explanation["steps"]] == ["where", "what", "rule", "unit", "deadline"]


def test_explanation_in_plain_chinese(snap: JurisdictionSnapshot, cal: WorkingCalendar) -> None:
    d = decide(snap, cal, event(key=K_SR001, point=centre(snap, G_QINGXI)))
    assert "事项「占道经营」已下放至青溪镇：由青溪镇综合行政执法队承办（职能 enforcement）" in d.explanation_zh
    assert d.explanation_zh.startswith("定位：坐标落在青溪镇")
    d = decide(snap, cal, event(key=K_WJ002, point=centre(snap, G_FENGLIN)))
    assert "事项「违法占用耕地建房」未下放至枫林镇" in d.explanation_zh and "派驻机构" in d.explanation_zh
    d = decide(snap, cal, event(key=K_ZJ004, point=centre(snap, G_QINGXI)))
    assert "吹哨" in d.explanation_zh and "青溪县住房和城乡建设局" in d.explanation_zh


def test_same_matter_devolved_in_one_township_not_the_other(snap: JurisdictionSnapshot, cal: WorkingCalendar) -> None:
    qingxi = decide(snap, cal, event(key=K_WJ002, point=centre(snap, G_QINGXI)))
    fenglin = decide(snap, cal, event(key=K_WJ002, point=centre(snap, G_FENGLIN)))
    assert qingxi.matter == fenglin.matter == "WJ002"
    assert (qingxi.devolved, qingxi.unit_kind) == (True, "enforcement_team")
    assert (fenglin.devolved, fenglin.unit_kind) == (False, "stationed_agency")


# --------------------------------------------------------------------------- step 3: rules 派遣规则

RULE_CASES: list[tuple[str, dict[str, Any], str | None, str, str, tuple[str, ...], float | None]] = [
    # (id, event kwargs (grid → point), expected rule, unit, decided_by, cohandlers, deadline hours)
    (
        "gas keyword in 青溪",
        {"grid": G_QINGXI, "key": K_SR001, "description": "楼道里有燃气味"},
        "gas-qingxi",
        "330127101-yjgl",
        "rule",
        ("pz-pcs-qingxi",),
        None,
    ),
    (
        "gas beats critical in 白沙 (priority 10 < 20)",
        {"grid": G_BAISHA, "key": K_SR001, "title": "液化气罐泄漏", "urgency": "critical"},
        "gas-baisha",
        "330127001-yjgl",
        "rule",
        ("pz-pcs-baisha",),
        None,
    ),
    (
        "critical in 白沙 → 1 h",
        {"grid": G_BAISHA, "key": K_SC001, "urgency": "critical"},
        "baisha-critical",
        "330127001-zfd",
        "rule",
        (),
        1.0,
    ),
    (
        "school grid: deadline only, unit by default",
        {"grid": G_BAISHA_SCHOOL, "key": K_SR001},
        "school-vendors",
        "330127001-zfd",
        "devolved",
        (),
        4.0,
    ),
    (
        "school grid, critical: urgency condition fails → baisha-critical",
        {"grid": G_BAISHA_SCHOOL, "key": K_SR001, "urgency": "critical"},
        "baisha-critical",
        "330127001-zfd",
        "rule",
        (),
        1.0,
    ),
    (
        "sand mining in 枫林 → 水利局 with co-handler",
        {"grid": G_SHIMEN, "key": K_SL001},
        "sand-mining",
        "dept-slj",
        "rule",
        ("pz-zrzys-qingxi",),
        None,
    ),
    (
        "12345 praise in 白沙",
        {"grid": G_BAISHA, "key": K_SR001, "appeal_type": "praise"},
        "baisha-praise",
        "330127001-dzb",
        "rule",
        (),
        40.0,
    ),
    (
        "praise condition needs source 12345",
        {"grid": G_BAISHA, "key": "05-003", "source": "cityops"},
        None,
        "330127001-zfd",
        "devolved",
        (),
        None,
    ),
]


@pytest.mark.parametrize(
    ("kw", "rule_id", "unit", "decided_by", "cohandlers", "hours"),
    [c[1:] for c in RULE_CASES],
    ids=[c[0] for c in RULE_CASES],
)
def test_override_rules(
    snap: JurisdictionSnapshot,
    cal: WorkingCalendar,
    kw: dict[str, Any],
    rule_id: str | None,
    unit: str,
    decided_by: str,
    cohandlers: tuple[str, ...],
    hours: float | None,
) -> None:
    kw = dict(kw)
    grid = kw.pop("grid")
    d = decide(snap, cal, event(point=centre(snap, grid), **kw))
    assert (d.rule_id, d.unit, d.decided_by, d.cohandlers) == (rule_id, unit, decided_by, cohandlers)
    assert d.rules_version == 9
    if hours is not None:
        assert d.deadline_hours == hours
    if rule_id is not None:
        assert f"命中规则 {rule_id}" in d.explanation_zh and "规则集版本 9" in d.explanation_zh
        assert d.explanation["matched_rule"] == rule_id


def test_rule_priority_not_list_order_and_case_insensitive_keywords(
    snap: JurisdictionSnapshot, cal: WorkingCalendar
) -> None:
    rules = [
        Rule.model_validate(
            {"id": "late", "priority": 50, "conditions": {"keywords": ["KTV"]}, "action": {"unit": "pz-pcs-qingxi"}}
        ),
        Rule.model_validate(
            {
                "id": "early",
                "priority": 5,
                "conditions": {"keywords": ["ktv"], "matter": ["SR001"], "township": [QINGXI]},
                "action": {"unit": "330127101-pafz", "cohandlers": ["pz-pcs-qingxi"]},
            }
        ),
    ]
    custom = snap.with_rules(rules, rules_version=10)
    d = decide(custom, cal, event(point=centre(snap, G_QINGXI), description="楼下KTV门口占道"))
    assert (d.rule_id, d.unit, d.cohandlers, d.rules_version) == ("early", "330127101-pafz", ("pz-pcs-qingxi",), 10)
    # the matter condition fails for another matter → the next rule
    d = decide(custom, cal, event(key=K_SC001, point=centre(snap, G_QINGXI), description="KTV无照经营"))
    assert (d.rule_id, d.unit) == ("late", "pz-pcs-qingxi")
    # no keyword → no rule
    d = decide(custom, cal, event(point=centre(snap, G_QINGXI), description="桥头占道"))
    assert d.rule_id is None and d.decided_by == "devolved"


# --------------------------------------------------------------------------- step 2: what 定性


def test_unmapped_code_goes_to_triage_uncategorised(snap: JurisdictionSnapshot, cal: WorkingCalendar) -> None:
    d = decide(snap, cal, event(key="999999", point=centre(snap, G_QINGXI)))
    assert (d.outcome, d.triage_reason, d.unit, d.deadline) == ("triage", "uncategorised", None, None)
    assert d.placement is not None and d.placement.township == QINGXI  # still located
    assert "没有对应事项" in d.explanation_zh and "转人工分拨" in d.explanation_zh


@pytest.mark.parametrize(
    ("source", "key", "matter"),
    [("cityops", "05-03", "SR001"), ("cityops", "05-003", "SR001"), ("gridworker", "gw-wj-01", "WJ001")],
)
def test_source_code_variants(
    snap: JurisdictionSnapshot, cal: WorkingCalendar, source: str, key: str, matter: str
) -> None:
    d = decide(snap, cal, event(source=source, key=key, point=centre(snap, G_QINGXI)))
    assert d.matter == matter and d.outcome == "dispatch"


# --------------------------------------------------------------------------- step 1: where 定位

OUTSIDE = (118.5, 29.0)  # in China, outside every polygon of the county 县域外


WHERE_CASES: list[tuple[str, dict[str, Any], str | None, str | None, str | None]] = [
    # (id, event kwargs, method, township, finest code)
    ("point in a grid", {"point": "G_QINGXI"}, "point", QINGXI, G_QINGXI),
    ("outside → grid code", {"point": OUTSIDE, "grid_code": G_FENGLIN}, "code", FENGLIN, G_FENGLIN),
    ("no point → division code", {"division_code": QINGXI}, "code", QINGXI, QINGXI),
    ("12-digit padded township code", {"division_code": "330127101000"}, "code", QINGXI, QINGXI),
    ("cell code → its village (prefix)", {"cell_code": "33012700100101"}, "code", BAISHA, "330127001001"),
    ("finest code wins", {"division_code": FENGLIN, "grid_code": G_SHIMEN}, "code", FENGLIN, G_SHIMEN),
    ("unknown code → address", {"division_code": "330199001", "address": "青溪县枫林镇石门村口"}, "address",
     FENGLIN, "330127102201"),
    ("outside, no code → address", {"point": OUTSIDE, "address": "白沙街道新安社区菜场"}, "address", BAISHA,
     "330127001002"),
    ("county name alone does not place", {"address": "青溪县某路口"}, None, None, None),
    ("nothing at all", {"point": OUTSIDE}, None, None, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kw", "method", "township", "code"), [c[1:] for c in WHERE_CASES], ids=[c[0] for c in WHERE_CASES]
)
def test_where(
    snap: JurisdictionSnapshot,
    cal: WorkingCalendar,
    kw: dict[str, Any],
    method: str | None,
    township: str | None,
    code: str | None,
) -> None:
    kw = dict(kw)
    if kw.get("point") == "G_QINGXI":
        kw["point"] = centre(snap, G_QINGXI)
    d = decide(snap, cal, event(**kw))
    if method is None:
        assert (d.outcome, d.triage_reason, d.placement) == ("triage", "unlocated", None)
        assert "无法定位" in d.explanation_zh
        return
    assert d.placement is not None
    assert (d.placement.method, d.placement.township, d.placement.code) == (method, township, code)
    assert d.outcome == "dispatch"


def test_point_in_township_polygon_but_no_grid_falls_back_after_codes(
    snap: JurisdictionSnapshot, cal: WorkingCalendar
) -> None:
    """A bundle whose township has no grid polygons: the point still places the event in it."""
    data = copy.deepcopy(DEMO)
    data["divisions"]["features"] = [
        f
        for f in data["divisions"]["features"]
        if not (f["properties"]["level"] in ("grid", "village") and f["properties"]["code"].startswith(FENGLIN))
    ]
    bare = JurisdictionSnapshot(JurisdictionBundle.model_validate(data), version=1, rules_version=1, validate=False)
    point = centre(snap, G_FENGLIN)
    d = decide(bare, cal, event(point=point))
    assert d.placement is not None and (d.placement.method, d.placement.level) == ("point", "township")
    # a code naming the same township is finer-or-equal: the code is used
    d = decide(bare, cal, event(point=point, division_code=FENGLIN))
    assert d.placement is not None and (d.placement.method, d.placement.township) == ("code", FENGLIN)
    # a code naming another township: the point wins and the mismatch stays visible
    d = decide(bare, cal, event(point=point, division_code=QINGXI))
    assert d.placement is not None and (d.placement.method, d.placement.township) == ("point", FENGLIN)
    assert d.placement.mismatch is not None and d.placement.mismatch.code_township == QINGXI


def test_bd09_point_near_a_grid_edge_lands_in_its_true_grid(snap: JurisdictionSnapshot, cal: WorkingCalendar) -> None:
    raw = (119.0191, 29.5735)  # 百度坐标 as the grid app sends it
    wgs = to_wgs84(*raw, "bd09")
    naive = snap.locate(*raw)
    assert naive is not None and naive.grid == "330127102001002"  # the raw numbers would land here
    d = decide(snap, cal, event(source="gridworker", key="GW-WJ-01", point=wgs, crs="bd09", raw=raw))
    assert d.placement is not None and d.placement.grid == "330127102001001" != naive.grid
    assert d.unit == "330127102-zfd"


def test_gridworker_reporting_in_another_township_is_routed_by_the_point(
    snap: JurisdictionSnapshot, cal: WorkingCalendar
) -> None:
    ev = event(source="gridworker", key="GW-SR-01", point=centre(snap, G_QINGXI), grid_code=G_FENGLIN)
    d = decide(snap, cal, ev)
    assert d.placement is not None and d.placement.township == QINGXI and d.unit == "330127101-zfd"
    m = d.placement.mismatch
    assert m is not None and (m.code_field, m.code, m.code_township, m.point_township) == (
        "grid_code",
        G_FENGLIN,
        FENGLIN,
        QINGXI,
    )
    assert "不一致，按坐标派遣" in d.explanation_zh
    assert d.explanation["steps"][0]["mismatch"]["code_township"] == FENGLIN
    # same township: no mismatch
    same = decide(
        snap, cal, event(source="gridworker", key="GW-SR-01", point=centre(snap, G_QINGXI), grid_code=G_QINGXI)
    )
    assert same.placement is not None and same.placement.mismatch is None


# --------------------------------------------------------------------------- step 5: deadlines 时限

DEADLINE_CASES = [
    # (id, now, urgency, key, grid, deadline, basis, accept, reject window)
    ("weekend: Fri 16:00 + 8 wh", datetime(2026, 11, 27, 16, 0, tzinfo=CST), "urgent", K_SR001, G_QINGXI,
     datetime(2026, 11, 30, 16, 30, tzinfo=CST), "working",
     datetime(2026, 11, 30, 16, 0, tzinfo=CST), datetime(2026, 12, 1, 16, 0, tzinfo=CST)),
    ("Golden Week: Sep 30 15:00 + 8 wh", datetime(2026, 9, 30, 15, 0, tzinfo=CST), "urgent", K_SR001, G_QINGXI,
     datetime(2026, 10, 8, 15, 30, tzinfo=CST), "working",
     datetime(2026, 10, 8, 15, 0, tzinfo=CST), datetime(2026, 10, 9, 15, 0, tzinfo=CST)),
    ("调休 Saturday Oct 10 is a working day", datetime(2026, 10, 9, 16, 0, tzinfo=CST), "urgent", K_SR001,
     G_QINGXI, datetime(2026, 10, 10, 16, 30, tzinfo=CST), "working",
     datetime(2026, 10, 10, 16, 0, tzinfo=CST), datetime(2026, 10, 12, 16, 0, tzinfo=CST)),
    ("critical is always natural time", datetime(2026, 11, 28, 22, 0, tzinfo=CST), "critical", K_SR001, G_QINGXI,
     datetime(2026, 11, 29, 0, 0, tzinfo=CST), "natural",
     datetime(2026, 11, 29, 0, 0, tzinfo=CST), datetime(2026, 12, 2, 8, 30, tzinfo=CST)),
    # 12345 一般件: 5 working days. Tue 11-24 10:00 → Wed (1), Thu (2), Fri (3), Mon (4), Tue 12-01 (5) 10:00.
    ("一般件 5 working days, same clock time", datetime(2026, 11, 24, 10, 0, tzinfo=CST), "normal", K_SR001,
     G_QINGXI, datetime(2026, 12, 1, 10, 0, tzinfo=CST), "working",
     datetime(2026, 11, 25, 10, 0, tzinfo=CST), datetime(2026, 11, 26, 10, 0, tzinfo=CST)),
    # Fri 11-27 18:00, after work → Mon (1) … Fri 12-04 (5), at the end of work 17:30.
    ("一般件 after hours: the 5th day's end", datetime(2026, 11, 27, 18, 0, tzinfo=CST), "normal", K_SR001,
     G_QINGXI, datetime(2026, 12, 4, 17, 30, tzinfo=CST), "working",
     datetime(2026, 12, 1, 8, 30, tzinfo=CST), datetime(2026, 12, 2, 8, 30, tzinfo=CST)),
    ("natural matter over a weekend", datetime(2026, 11, 27, 16, 0, tzinfo=CST), "normal", "010102", G_QINGXI,
     datetime(2026, 11, 28, 16, 0, tzinfo=CST), "natural",
     datetime(2026, 11, 28, 16, 0, tzinfo=CST), datetime(2026, 12, 1, 16, 0, tzinfo=CST)),
    ("rule deadline override: school grid 4 wh", datetime(2026, 11, 27, 16, 0, tzinfo=CST), "normal", K_SR001,
     G_BAISHA_SCHOOL, datetime(2026, 11, 30, 11, 0, tzinfo=CST), "working",
     datetime(2026, 11, 30, 11, 0, tzinfo=CST), datetime(2026, 12, 1, 16, 0, tzinfo=CST)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("now", "urgency", "key", "grid", "deadline", "basis", "accept", "window"),
    [c[1:] for c in DEADLINE_CASES],
    ids=[c[0] for c in DEADLINE_CASES],
)
def test_deadlines(
    snap: JurisdictionSnapshot,
    cal: WorkingCalendar,
    now: datetime,
    urgency: str,
    key: str,
    grid: str,
    deadline: datetime,
    basis: str,
    accept: datetime,
    window: datetime,
) -> None:
    d = decide(snap, cal, event(key=key, point=centre(snap, grid), urgency=urgency), now=now)
    assert d.outcome == "dispatch"
    assert (d.deadline, d.time_basis, d.accept_deadline, d.reject_window_ends_at) == (deadline, basis, accept, window)
    assert d.provisional is False
    assert d.explanation["steps"][-1]["deadline"] == deadline.isoformat()


def test_a_working_day_deadline_says_so(snap: JurisdictionSnapshot, cal: WorkingCalendar) -> None:
    now = datetime(2026, 11, 24, 10, 0, tzinfo=CST)
    d = decide(snap, cal, event(key=K_SR001, point=centre(snap, G_QINGXI), urgency="normal"), now=now)
    assert (d.deadline_working_days, d.deadline_hours) == (5, None)
    assert "5 个工作日" in d.explanation_zh
    step = d.explanation["steps"][-1]
    assert (step["working_days"], step["hours"]) == (5, None)
    urgent = decide(snap, cal, event(key=K_SR001, point=centre(snap, G_QINGXI), urgency="urgent"), now=now)
    assert (urgent.deadline_working_days, urgent.deadline_hours) == (None, 8.0)
    assert "8 小时" in urgent.explanation_zh


def test_deadline_in_an_unpublished_year_is_provisional(snap: JurisdictionSnapshot, cal: WorkingCalendar) -> None:
    d = decide(snap, cal, event(point=centre(snap, G_QINGXI)), now=datetime(2026, 12, 30, 16, 0, tzinfo=CST))
    assert d.deadline is not None and d.deadline.year == 2027 and d.provisional is True
    assert "暂定" in d.explanation_zh


# --------------------------------------------------------------------------- candidates and exclusions 候选与退单


def test_candidates_are_ordered(snap: JurisdictionSnapshot) -> None:
    listed = candidates(event(key=K_WJ002, point=centre(snap, G_QINGXI)), snap)
    assert [(c.unit, c.decided_by) for c in listed] == [
        ("330127101-zfd", "devolved"),
        ("pz-zrzys-qingxi", "stationed_agency"),
        ("dept-zrzyj", "county_department"),
    ]
    listed = candidates(event(key=K_SL001, point=centre(snap, G_SHIMEN)), snap)
    assert [c.unit for c in listed] == ["dept-slj"]  # the rule's unit is also the department: once
    assert candidates(event(key="999999", point=centre(snap, G_SHIMEN)), snap) == []
    assert candidates(event(key=K_ZJ004, point=centre(snap, G_SHIMEN)), snap, matter="WJ002")[0].unit == (
        "pz-zrzys-qingxi"
    )


@pytest.mark.parametrize(
    ("excluded", "unit", "decided_by"),
    [
        ((), "330127101-zfd", "devolved"),
        (("330127101-zfd",), "pz-zrzys-qingxi", "stationed_agency"),
        (("330127101-zfd", "pz-zrzys-qingxi"), "dept-zrzyj", "county_department"),
        (("pz-zrzys-qingxi",), "330127101-zfd", "devolved"),
    ],
)
def test_exclude_units_moves_to_the_next_candidate(
    snap: JurisdictionSnapshot, cal: WorkingCalendar, excluded: tuple[str, ...], unit: str, decided_by: str
) -> None:
    d = decide(snap, cal, event(key=K_WJ002, point=centre(snap, G_QINGXI)), exclude_units=frozenset(excluded))
    assert (d.outcome, d.unit, d.decided_by) == ("dispatch", unit, decided_by)
    assert set(d.skipped_units) == set(excluded) & {c.unit for c in d.candidates}
    if excluded:
        assert "已跳过退单单位" in d.explanation_zh


def test_every_candidate_rejected_goes_to_triage(snap: JurisdictionSnapshot, cal: WorkingCalendar) -> None:
    all_three = frozenset({"330127101-zfd", "pz-zrzys-qingxi", "dept-zrzyj"})
    d = decide(snap, cal, event(key=K_WJ002, point=centre(snap, G_QINGXI)), exclude_units=all_three)
    assert (d.outcome, d.triage_reason, d.unit) == ("triage", "no_candidate_left", None)


def test_rule_unit_excluded_falls_back_to_jurisdiction_keeping_the_rule(
    snap: JurisdictionSnapshot, cal: WorkingCalendar
) -> None:
    ev = event(point=centre(snap, G_QINGXI), description="燃气泄漏")
    d = decide(snap, cal, ev, exclude_units={"330127101-yjgl"})
    assert (d.unit, d.decided_by, d.rule_id) == ("330127101-zfd", "devolved", "gas-qingxi")


# --------------------------------------------------------------------------- vanished units 单位缺失


def _without_units(*unit_ids: str, devolve: dict[str, list[str]] | None = None) -> JurisdictionSnapshot:
    data = copy.deepcopy(DEMO)
    data["units"] = [u for u in data["units"] if u["id"] not in unit_ids]
    for township, matters in (devolve or {}).items():
        data["devolution"][township] = [*data["devolution"][township], *matters]
    bundle = JurisdictionBundle.model_validate(data)
    return JurisdictionSnapshot(bundle, version=6, rules_version=9, validate=False)


@pytest.mark.parametrize(
    ("snapshot_args", "key", "grid", "missing"),
    [
        ((("330127101-zfd",), None), K_SR001, G_QINGXI, "330127101-zfd"),  # devolved unit gone
        ((("dept-zjj",), None), K_ZJ004, G_QINGXI, "dept-zjj"),  # county department gone
        (((), {QINGXI: ["ZJ005"]}), K_ZJ005, G_QINGXI, None),  # 青溪镇 has no unit for "urban"
    ],
    ids=["devolved unit vanished", "county department vanished", "no unit for the function"],
)
def test_vanished_unit_goes_to_triage_no_unit(
    cal: WorkingCalendar, snapshot_args: tuple[tuple[str, ...], Any], key: str, grid: str, missing: str | None
) -> None:
    broken = _without_units(*snapshot_args[0], devolve=snapshot_args[1])
    snap = JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=1, rules_version=1)
    d = decide(broken, cal, event(key=key, point=centre(snap, grid)))
    assert (d.outcome, d.triage_reason, d.unit) == ("triage", "no_unit", None)
    assert "承办单位不存在" in d.explanation_zh
    if missing:
        assert missing in d.explanation_zh


def test_vanished_cohandler_is_dropped(cal: WorkingCalendar) -> None:
    broken = _without_units("pz-pcs-qingxi")
    snap = JurisdictionSnapshot(JurisdictionBundle.model_validate(DEMO), version=1, rules_version=1)
    d = decide(broken, cal, event(point=centre(snap, G_QINGXI), description="燃气"))
    assert (d.unit, d.cohandlers) == ("330127101-yjgl", ())


# --------------------------------------------------------------------------- self-handled 自办


def test_self_handled_is_recorded_not_dispatched(snap: JurisdictionSnapshot, cal: WorkingCalendar) -> None:
    ev = event(source="gridworker", key="GW-SR-01", point=centre(snap, G_FENGLIN), self_handled=True)
    d = decide(snap, cal, ev)
    assert (d.outcome, d.unit, d.deadline, d.matter) == ("self_handled", None, None, "SR001")
    assert d.placement is not None and d.placement.township == FENGLIN
    assert "自办" in d.explanation_zh


def test_decision_is_json_ready_and_deterministic(snap: JurisdictionSnapshot, cal: WorkingCalendar) -> None:
    ev = event(point=centre(snap, G_QINGXI), description="燃气")
    first, second = decide(snap, cal, ev), decide(snap, cal, ev)
    assert first == second
    dumped = json.loads(json.dumps(first.to_dict(), ensure_ascii=False))
    assert dumped["unit"] == "330127101-yjgl" and dumped["placement"]["grid"] == G_QINGXI
    assert dumped["explanation"]["steps"][2]["rule_id"] == "gas-qingxi"


def test_naive_now_is_a_programming_error(snap: JurisdictionSnapshot, cal: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        route(event(), snap, now=datetime(2026, 11, 24, 10, 0), calendar=cal)


def test_locate_event_without_anything(snap: JurisdictionSnapshot) -> None:
    assert locate_event(event(), snap) is None
