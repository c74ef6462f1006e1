"""Tests for shared.jurisdiction: bundle model, validation, digest, snapshot lookups.

辖区数据包：模型、校验（列出全部问题及路径）、摘要、快照查询。
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shared.jurisdiction import (
    BundleInvalidError,
    JurisdictionBundle,
    JurisdictionSnapshot,
    Problem,
    Rule,
    bundle_digest,
    parse_bundle,
    parse_rules,
    rules_problems,
    validate_bundle,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "deploy" / "demo" / "county.json"

BAISHA, QINGXI, FENGLIN = "330127001", "330127101", "330127102"


@pytest.fixture(scope="module")
def demo_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEMO.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def demo(demo_data: dict[str, Any]) -> JurisdictionBundle:
    return JurisdictionBundle.model_validate(demo_data)


@pytest.fixture(scope="module")
def snap(demo: JurisdictionBundle) -> JurisdictionSnapshot:
    return JurisdictionSnapshot(demo, version=3, rules_version=7)


def _feature_index(data: dict[str, Any], code: str) -> int:
    for i, feature in enumerate(data["divisions"]["features"]):
        if feature["properties"]["code"] == code:
            return i
    raise KeyError(code)


def _load_make_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_demo", ROOT / "deploy" / "demo" / "make_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- the demo county


def test_demo_bundle_validates_clean(demo_data: dict[str, Any], demo: JurisdictionBundle) -> None:
    assert validate_bundle(demo) == []
    bundle, problems = parse_bundle(demo_data)
    assert problems == [] and bundle is not None


def test_demo_file_is_what_the_generator_writes() -> None:
    make_demo = _load_make_demo()
    assert make_demo.render(make_demo.build_demo()) == DEMO.read_text(encoding="utf-8")


def test_demo_county_shape(demo: JurisdictionBundle) -> None:
    features = [f.properties for f in demo.divisions.features]
    townships = [p.code for p in features if p.level == "township"]
    assert sorted(townships) == [BAISHA, QINGXI, FENGLIN]
    villages = {p.code: p.parent_code for p in features if p.level == "village"}
    for township in townships:
        own_villages = [v for v, parent in villages.items() if parent == township]
        assert 2 <= len(own_villages) <= 4
        grids = [p for p in features if p.level == "grid" and villages[p.parent_code or ""] == township]
        assert len(grids) >= 10
        assert all(g.code.startswith(g.parent_code or "?") and len(g.code) == 15 for g in grids)

    kinds: dict[str, list[Any]] = {}
    for unit in demo.units:
        kinds.setdefault(unit.kind, []).append(unit)
    assert len(kinds["stationed_agency"]) >= 4
    assert any(len(u.covers or []) >= 2 for u in kinds["stationed_agency"])
    for township in townships:
        assert sum(1 for u in kinds["enforcement_team"] if u.township_code == township) == 1
        assert sum(1 for u in kinds["township_office"] if u.township_code == township) >= 6
    with_agency = {u.department for u in kinds["stationed_agency"]}
    assert {u.id for u in kinds["county_department"]} - with_agency  # someone gets whistled (吹哨)

    assert len(demo.matters) >= 40
    assert all(m.deadlines.critical <= 4 for m in demo.matters)
    assert {m.time_basis for m in demo.matters} == {"working", "natural"}
    names = {m.name for m in demo.matters}
    assert {"占道经营", "暴露垃圾", "私搭乱建", "无证摊贩", "油烟扰民", "噪声扰民", "非法采砂"} <= names

    cityops = demo.source_mappings["cityops"]
    assert any(len(k.split("-")[1]) == 2 for k in cityops) and any(len(k.split("-")[1]) == 3 for k in cityops)
    assert demo.source_mappings["12345"] and demo.source_mappings["gridworker"]

    devolved = {t: set(codes) for t, codes in demo.devolution.items()}
    assert devolved[QINGXI] - devolved[BAISHA] and devolved[BAISHA] - devolved[FENGLIN]
    assert len(demo.rules) >= 2


# --------------------------------------------------------------------------- validation


def _bow_tie(x: float, y: float, d: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x, y], [x + d, y + d], [x + d, y], [x, y + d], [x, y]]]}


def test_injected_problems_are_all_listed_with_paths(demo_data: dict[str, Any]) -> None:
    data = copy.deepcopy(demo_data)
    features = data["divisions"]["features"]

    # 1. unknown parent: 新安社区 → a township that does not exist
    i_unknown = _feature_index(data, "330127001002")
    features[i_unknown]["properties"]["parent_code"] = "330127999"
    # 2. bow-tie polygon: 青溪社区第1网格
    i_bow = _feature_index(data, "330127101001001")
    features[i_bow]["geometry"] = _bow_tie(119.04, 29.61, 0.01)
    # 3. overlap: 白沙社区第2网格 moved half a cell west onto 第1网格
    i_first = _feature_index(data, "330127001001001")
    i_overlap = _feature_index(data, "330127001001002")
    ring = features[i_first]["geometry"]["coordinates"][0]
    half = (ring[1][0] - ring[0][0]) / 2
    features[i_overlap]["geometry"] = {
        "type": "Polygon",
        "coordinates": [[[x + half, y] for x, y in ring]],
    }
    # 4. point-less grid: 枫林社区第3网格
    i_pointless = _feature_index(data, "330127102001003")
    features[i_pointless]["geometry"] = None
    # 5. grid whose parent is a township, and whose code does not extend it
    i_level = _feature_index(data, "330127102201001")
    features[i_level]["properties"]["parent_code"] = QINGXI
    # 6. unknown unit in a rule; unknown grid in another
    data["rules"][1]["action"]["unit"] = "no-such-unit"
    data["rules"][4]["conditions"]["grid"] = ["330127001001999"]
    # 7. deadlines out of range
    data["matters"][2]["deadlines"]["normal"] = 0
    data["matters"][5]["deadlines"]["urgent"] = 24 * 366
    # 8. unit references
    i_agency = next(i for i, u in enumerate(data["units"]) if u["id"] == "pz-scjgs-qingxi")
    data["units"][i_agency]["department"] = "dept-nope"
    data["units"][i_agency]["covers"].append("330127555")
    i_office = next(i for i, u in enumerate(data["units"]) if u["kind"] == "township_office")
    data["units"][i_office]["township_code"] = "330127777"
    # 9. matter held by a township office instead of a county department
    data["matters"][0]["department"] = f"{BAISHA}-dzb"
    # 10. devolution / functions / mappings naming unknown things
    data["devolution"][FENGLIN].append("XX999")
    data["devolution"]["330127888"] = ["SR001"]
    data["township_functions"][QINGXI]["social"] = "ghost-unit"
    data["source_mappings"]["12345"]["999999"] = "XX998"
    data["source_mappings"]["cityops"]["1-1"] = "SR001"
    # 11. duplicate rule id and priority
    data["rules"][3]["id"] = data["rules"][2]["id"]
    data["rules"][3]["priority"] = data["rules"][2]["priority"]

    bundle, problems = parse_bundle(data)
    assert bundle is not None
    got = {(p.path, p.message) for p in problems}
    paths = [p.path for p in problems]
    f = "divisions.features"
    expected: dict[str, str] = {
        f"{f}[{i_unknown}].properties.parent_code": "unknown parent code 330127999",
        f"{f}[{i_bow}].geometry": "Self-intersection",
        f"{f}[{i_overlap}].geometry": "overlaps grid 330127001001001",
        f"{f}[{i_pointless}].geometry": "point-less grid",
        f"{f}[{i_level}].properties.parent_code": "a grid's parent must be a village",
        f"{f}[{i_level}].properties.code": "does not extend its parent's code",
        "rules[1].action.unit": "unknown unit no-such-unit",
        "rules[4].conditions.grid[0]": "unknown grid 330127001001999",
        "matters[2].deadlines.normal": "out of range",
        "matters[5].deadlines.urgent": "out of range",
        f"units[{i_agency}].department": "unknown county department dept-nope",
        f"units[{i_agency}].covers[2]": "unknown township 330127555",
        f"units[{i_office}].township_code": "unknown township 330127777",
        # … which also makes 白沙街道's party function point at another township's unit
        f"township_functions.{BAISHA}.party": "belongs to township 330127777",
        "matters[0].department": "not a county_department unit",
        f"devolution.{FENGLIN}[{len(demo_data['devolution'][FENGLIN])}]": "unknown matter XX999",
        "devolution.330127888": "unknown township 330127888",
        f"township_functions.{QINGXI}.social": "unknown unit ghost-unit",
        "source_mappings.12345.999999": "unknown matter XX998",
        "source_mappings.cityops.1-1": "must be <major>-<minor>",
        "rules[3].id": "duplicate rule id",
        "rules[3].priority": "duplicate priority",
    }
    for path, fragment in expected.items():
        assert any(p == path and fragment in m for p, m in got), (path, fragment, sorted(got))
    # … and nothing else: every problem is one of the injected ones.
    assert sorted(paths) == sorted(expected), sorted(set(paths) ^ set(expected))


def test_problem_is_a_plain_pair() -> None:
    problem = Problem("units[3].department", "unknown county department x")
    assert problem.to_dict() == {"path": "units[3].department", "message": "unknown county department x"}
    assert str(problem) == "units[3].department: unknown county department x"


def test_shape_errors_are_listed_with_paths(demo_data: dict[str, Any]) -> None:
    data = copy.deepcopy(demo_data)
    data["divisions"]["features"][3]["properties"]["level"] = "town"
    data["units"][0]["kind"] = "office"
    data["matters"][1]["time_basis"] = "lunar"
    data["rules"][0]["conditions"]["keyword"] = ["typo"]
    bundle, problems = parse_bundle(data)
    assert bundle is None
    paths = {p.path for p in problems}
    assert {
        "divisions.features[3].properties.level",
        "units[0].kind",
        "matters[1].time_basis",
        "rules[0].conditions.keyword",
    } <= paths
    assert validate_bundle(data) == problems


def test_county_feature_and_code_lengths(demo_data: dict[str, Any]) -> None:
    data = copy.deepcopy(demo_data)
    data["county_code"] = "330128"
    problems = validate_bundle(data)
    assert (
        Problem("divisions.features[0].properties.code", "county feature code 330127 differs from county_code 330128")
        in problems
    )

    data = copy.deepcopy(demo_data)
    grid = _feature_index(data, "330127001001001")
    data["divisions"]["features"][grid]["properties"]["code"] = "33012700100101"  # 14 digits
    paths = {p.path for p in validate_bundle(data)}
    assert f"divisions.features[{grid}].properties.code" in paths


def test_duplicate_codes_empty_and_unreadable_geometry(demo_data: dict[str, Any]) -> None:
    data = copy.deepcopy(demo_data)
    features = data["divisions"]["features"]
    features.append(copy.deepcopy(features[-1]))
    i_empty = _feature_index(data, "330127101201001")
    features[i_empty]["geometry"] = {"type": "Polygon", "coordinates": []}
    i_bad = _feature_index(data, "330127101201002")
    features[i_bad]["geometry"] = {"type": "Polygon", "coordinates": [[[119.0, 29.6], [119.1, 29.6]]]}
    problems = {p.path: p.message for p in validate_bundle(data)}
    assert "duplicate division code" in problems[f"divisions.features[{len(features) - 1}].properties.code"]
    assert "empty geometry" in problems[f"divisions.features[{i_empty}].geometry"]
    assert "unreadable" in problems[f"divisions.features[{i_bad}].geometry.coordinates"]


def test_rules_problems_for_a_new_rule_set(demo: JurisdictionBundle, snap: JurisdictionSnapshot) -> None:
    raw = [
        {
            "id": "a",
            "priority": 1,
            "conditions": {"township": [BAISHA], "keywords": ["井盖"]},
            "action": {"unit": f"{BAISHA}-csgl", "cohandlers": [f"{BAISHA}-zfd"]},
        },
        {
            "id": "a",
            "priority": 1,
            "conditions": {"grid": ["330127001009001"], "matter": []},
            "action": {"unit": "dept-cgj", "cohandlers": ["dept-cgj", "nobody"], "deadline_hours": -2},
        },
        {"id": "c", "priority": 3, "conditions": {}, "action": {}},
    ]
    rules, shape_problems = parse_rules(raw)
    assert shape_problems == [] and rules is not None
    expected = {
        "rules[1].id",
        "rules[1].priority",
        "rules[1].conditions.grid[0]",
        "rules[1].conditions.matter",
        "rules[1].action.cohandlers[0]",
        "rules[1].action.cohandlers[1]",
        "rules[1].action.deadline_hours",
        "rules[2].action",
    }
    assert {p.path for p in rules_problems(rules, demo)} == expected
    assert rules_problems(rules, snap) == rules_problems(rules, demo)
    assert rules_problems(rules[:1], demo) == []

    _, problems = parse_rules([{"id": "x", "priority": "high", "action": {"unit": 5}}])
    assert {p.path for p in problems} == {"rules[0].priority", "rules[0].action.unit"}


# --------------------------------------------------------------------------- digest


def _reverse_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reverse_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(v) for v in value]
    return value


def test_digest_is_stable_under_key_reordering(demo_data: dict[str, Any], demo: JurisdictionBundle) -> None:
    digest = bundle_digest(demo)
    assert len(digest) == 64 and digest == bundle_digest(demo.model_copy(deep=True))
    assert bundle_digest(JurisdictionBundle.model_validate(_reverse_keys(demo_data))) == digest

    # unordered lists, integer coordinates, omitted defaults and the version do not matter either
    data = copy.deepcopy(demo_data)
    data["version"] = 99
    data["units"].reverse()
    data["divisions"]["features"].reverse()
    data["rules"].reverse()
    data["devolution"][BAISHA].reverse()
    county = data["divisions"]["features"][-1]
    assert county["properties"]["level"] == "county"
    county["geometry"]["coordinates"][0] = [
        [int(x) if x == int(x) else x, y] for x, y in county["geometry"]["coordinates"][0]
    ]
    for unit in data["units"]:
        if unit.get("township_code") is None:
            unit.pop("township_code", None)
    assert bundle_digest(JurisdictionBundle.model_validate(data)) == digest

    changed = copy.deepcopy(demo_data)
    changed["matters"][0]["deadlines"]["normal"] = 41
    assert bundle_digest(JurisdictionBundle.model_validate(changed)) != digest
    changed = copy.deepcopy(demo_data)
    changed["rules"][0]["action"]["cohandlers"].append("pz-sthjs")
    assert bundle_digest(JurisdictionBundle.model_validate(changed)) != digest


# --------------------------------------------------------------------------- snapshot


def test_snapshot_divisions(snap: JurisdictionSnapshot) -> None:
    assert (snap.county_code, snap.name, snap.version, snap.rules_version) == ("330127", "青溪县", 3, 7)
    grid = "330127001002004"
    assert [d.code for d in snap.lineage(grid)] == [grid, "330127001002", BAISHA, "330127"]
    assert [d.level for d in snap.ancestors(grid)] == ["village", "township", "county"]
    assert snap.lineage("nope") == ()
    codes = snap.codes_of(grid)
    assert codes is not None
    assert (codes.grid, codes.village, codes.township, codes.county) == (grid, "330127001002", BAISHA, "330127")
    village_codes = snap.codes_of("330127101201")
    assert village_codes is not None and village_codes.grid is None and village_codes.township == QINGXI
    assert snap.township_of(grid) == BAISHA and snap.township_of("330127") is None
    division = snap.division("330127101203")
    assert division is not None and division.name == "茶园村" and division.level == "village"
    assert [d.code for d in snap.children(QINGXI)] == ["330127101001", "330127101201", "330127101202", "330127101203"]
    assert len(snap.divisions("grid")) == 46


def test_snapshot_units_and_routing_lookups(snap: JurisdictionSnapshot) -> None:
    unit = snap.unit(f"{FENGLIN}-zfd")
    assert unit is not None and unit.kind == "enforcement_team" and unit.name == "枫林镇综合行政执法队"
    assert snap.is_devolved(QINGXI, "WJ002") and not snap.is_devolved(BAISHA, "WJ002")
    assert snap.is_devolved(BAISHA, "SR006") and not snap.is_devolved(FENGLIN, "SR006")
    assert not snap.is_devolved("330127999", "SR001")
    assert "NY001" in snap.devolved_matters(FENGLIN)
    office = snap.township_function_unit(BAISHA, "agriculture")
    assert office is not None and office.id == f"{BAISHA}-jjfz"  # 街道无农业农村办
    assert snap.township_function_unit(QINGXI, "urban") is None
    agency = snap.stationed_agency("dept-scjgj", FENGLIN)
    assert agency is not None and agency.id == "pz-scjgs-qingxi"
    assert snap.stationed_agency("dept-cgj", BAISHA) is None  # 吹哨 to the county
    dept = snap.county_department("dept-cgj")
    assert dept is not None and dept.name == "青溪县城市管理局"
    assert {u.id for u in snap.units("stationed_agency", township=FENGLIN)} >= {"pz-pcs-fenglin", "pz-sthjs"}
    assert all(u.township_code == QINGXI for u in snap.township_units(QINGXI))
    matter = snap.matter("SR001")
    assert matter is not None and matter.name == "占道经营" and matter.group == "市容环境"
    assert matter.deadlines.for_urgency("critical") <= 4


def test_snapshot_address_matching(snap: JurisdictionSnapshot) -> None:
    names = snap.division_names
    assert [len(n) for n, _ in names] == sorted((len(n) for n, _ in names), reverse=True)
    found = snap.match_address("青溪县白沙街道新安社区解放路12号")
    assert found is not None and found.code == "330127001002"
    found = snap.match_address("枫林镇集镇老街")
    assert found is not None and found.code == FENGLIN
    assert snap.match_address("杭州市西湖区文三路") is None
    assert snap.match_address("") is None


def test_snapshot_locate_and_immutability(snap: JurisdictionSnapshot, demo: JurisdictionBundle) -> None:
    result = snap.locate(119.003, 29.615)
    assert result is not None and result.grid == "330127001001001" and result.township == BAISHA
    assert snap.locator.count("grid") == 46
    with pytest.raises(AttributeError):
        snap.version = 4
    assert snap.digest == bundle_digest(demo)
    exported = snap.bundle()
    exported.name = "改名"
    assert snap.name == "青溪县"


def test_snapshot_with_rules(snap: JurisdictionSnapshot) -> None:
    new_rule = Rule.model_validate(
        {"id": "only", "priority": 1, "conditions": {"keywords": ["井盖"]}, "action": {"unit": "dept-cgj"}}
    )
    newer = snap.with_rules([new_rule], rules_version=8)
    assert newer.rules_version == 8 and newer.version == snap.version
    assert [r.id for r in newer.rules] == ["only"] and len(snap.rules) > 1
    assert newer.locator is snap.locator
    assert newer.digest != snap.digest
    with pytest.raises(BundleInvalidError) as err:
        snap.with_rules([Rule.model_validate({"id": "bad", "priority": 1, "action": {"unit": "nobody"}})], 9)
    assert [p.path for p in err.value.problems] == ["rules[0].action.unit"]


def test_snapshot_refuses_an_invalid_bundle(demo_data: dict[str, Any]) -> None:
    data = copy.deepcopy(demo_data)
    data["rules"][0]["action"]["unit"] = "nobody"
    data["matters"][0]["deadlines"]["critical"] = 0
    with pytest.raises(BundleInvalidError) as err:
        JurisdictionSnapshot(JurisdictionBundle.model_validate(data), version=1, rules_version=1)
    assert {p.path for p in err.value.problems} == {"rules[0].action.unit", "matters[0].deadlines.critical"}


# --------------------------------------------------------------------------- deadlines in working days


def _with_deadlines(demo_data: dict[str, Any], code: str, **deadlines: Any) -> JurisdictionBundle:
    data = copy.deepcopy(demo_data)
    matter = next(m for m in data["matters"] if m["code"] == code)
    matter["deadlines"].update(deadlines)
    return JurisdictionBundle.model_validate(data)


def test_working_day_deadlines_validate(demo_data: dict[str, Any]) -> None:
    sr001 = next(m for m in demo_data["matters"] if m["code"] == "SR001")
    assert (sr001["time_basis"], sr001["deadlines"]["normal"]) == ("working", {"working_days": 5})
    assert validate_bundle(_with_deadlines(demo_data, "SR001", normal={"working_days": 10})) == []
    critical = validate_bundle(_with_deadlines(demo_data, "SR001", critical={"working_days": 1}))
    assert [(p.path, "特急件" in p.message) for p in critical] == [
        (f"matters[{_matter_index(demo_data, 'SR001')}].deadlines.critical", True)
    ]
    grows = validate_bundle(_with_deadlines(demo_data, "SR001", urgent={"working_days": 6}))
    assert len(grows) == 1 and "must not grow with urgency" in grows[0].message
    natural = next(m for m in demo_data["matters"] if m["time_basis"] == "natural")
    problems = validate_bundle(_with_deadlines(demo_data, natural["code"], normal={"working_days": 1}))
    assert [p.path.endswith(".deadlines.normal") and "natural time" in p.message for p in problems] == [True]
    bad, found = parse_bundle(
        {**demo_data, "matters": [{**sr001, "deadlines": {**sr001["deadlines"], "normal": {"working_days": 0}}}]}
    )
    assert bad is None and any("working_days" in p.path for p in found)


def _matter_index(demo_data: dict[str, Any], code: str) -> int:
    return next(i for i, m in enumerate(demo_data["matters"]) if m["code"] == code)
