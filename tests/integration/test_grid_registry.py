"""Grid service end to end: real HTTP through the ASGI app, real PostgreSQL, real Tansu.

网格服务端到端测试：真实 HTTP（ASGI）、真实 PostgreSQL、真实 Tansu。
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.grid.app import create_app
from services.grid.load_demo import DEMO_BUNDLE, put_bundle, read_bundle
from services.grid.settings import GridSettings
from shared.embedded import TansuBroker
from shared.events import JURISDICTION_CHANGED, decode_envelope
from shared.geo import wgs84_to_bd09, wgs84_to_gcj02
from shared.jurisdiction import bundle_digest, parse_bundle
from tests.conftest import read_topic
from tests.helpers import eventually, serve

ROOT = Path(__file__).resolve().parents[2]
DEMO_CODE = "330127"
STAFF = orjson.dumps(
    {
        "t-admin": {"role": "admin", "township": "*"},
        "t-disp": {"role": "dispatcher", "township": "*"},
        "t-unit": {"role": "unit", "township": "330127101", "unit": "330127101-zfd"},
    }
).decode()
ADMIN = {"Authorization": "Bearer t-admin"}
DISPATCHER = {"Authorization": "Bearer t-disp"}
#: Inside 白沙社区第1网格 (119.000–119.006, 29.606666–29.62). 位于白沙社区第1网格内。
GRID1_POINT = (119.003, 29.615)


def settings_for(database_url: str, bootstrap: str, **kw: Any) -> GridSettings:
    return GridSettings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        staff_tokens=STAFF,
        outbox_poll_interval_s=0.1,
        log_json=False,
        **kw,
    )


@pytest.fixture(scope="module")
async def client(database_url: str, kafka: TansuBroker) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings_for(database_url, kafka.bootstrap))) as c:
        yield c


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEMO_BUNDLE.read_text(encoding="utf-8"))
    return data


def derive(data: dict[str, Any], code: str, name: str, dx: float = 0.0) -> dict[str, Any]:
    """A copy of the demo as another county: every ``330127`` code prefix replaced, boundaries
    shifted ``dx`` degrees east. 由示范县派生另一区县：替换编码前缀并东移边界。"""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(DEMO_CODE, code)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        return value

    def shift(coords: Any) -> Any:
        if isinstance(coords[0], int | float):
            return [coords[0] + dx, coords[1]]
        return [shift(c) for c in coords]

    out: dict[str, Any] = walk(copy.deepcopy(data))
    out["name"] = name
    for feature in out["divisions"]["features"]:
        if feature.get("geometry"):
            feature["geometry"]["coordinates"] = shift(feature["geometry"]["coordinates"])
    return out


async def put(
    client: httpx.AsyncClient, body: Any, *, headers: dict[str, str] | None = None, request_id: str | None = None
) -> httpx.Response:
    h = {**(headers if headers is not None else ADMIN), "X-Request-ID": request_id or str(uuid.uuid4())}
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.put("/v1/jurisdiction", content=content, headers={**h, "Content-Type": "application/json"})


async def put_rules(
    client: httpx.AsyncClient, county: str, rules: Any, request_id: str | None = None
) -> httpx.Response:
    return await client.put(
        f"/v1/counties/{county}/rules",
        json=rules,
        headers={**ADMIN, "X-Request-ID": request_id or str(uuid.uuid4())},
    )


async def events_for(bootstrap: str, correlation_ids: set[str], timeout_s: float = 20.0) -> dict[str, Any]:
    """The jurisdiction.changed records whose correlation id is one of ``correlation_ids``."""
    found: dict[str, Any] = {}

    async def check() -> bool:
        for rec in await read_topic(bootstrap, JURISDICTION_CHANGED, expect=10**9, timeout_s=1.0):
            env = decode_envelope(rec.value)
            if env.correlation_id in correlation_ids:
                found[env.correlation_id] = (env, rec)
        return correlation_ids <= set(found)

    await eventually(check, timeout_s=timeout_s, every_s=0.2)
    return found


async def county_state(client: httpx.AsyncClient, county: str) -> dict[str, Any]:
    response = await client.get(f"/v1/counties/{county}", headers=DISPATCHER)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --------------------------------------------------------------------------- import / export


async def test_import_is_versioned_idempotent_and_round_trips(
    own_database_url: str, kafka: TansuBroker, demo: dict[str, Any]
) -> None:
    async with serve(create_app(settings_for(own_database_url, kafka.bootstrap))) as client:
        first_id = str(uuid.uuid4())
        started = time.perf_counter()
        response = await put(client, read_bundle(), request_id=first_id)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["changed"] is True
        assert (body["county_code"], body["name"]) == (DEMO_CODE, "青溪县")
        assert (body["version"], body["rules_version"]) == (1, 1)
        assert body["counts"] == {
            "counties": 1,
            "townships": 3,
            "villages": 10,
            "grids": 46,
            "units": 45,
            "matters": 57,  # 54 + JG001, JG002, AQ007 (approvals and alarms)
            "rules": 7,
        }
        demo_bundle, _ = parse_bundle(demo)
        assert demo_bundle is not None and body["digest"] == bundle_digest(demo_bundle)
        assert elapsed < 1.0, f"importing the demo bundle took {elapsed:.3f} s"

        # the same bundle again (reformatted, keys reordered, another informative version): nothing changes
        again_id = str(uuid.uuid4())
        reordered = {k: demo[k] for k in reversed(list(demo))} | {"version": 42}
        again = await put(client, orjson.dumps(reordered, option=orjson.OPT_INDENT_2), request_id=again_id)
        assert again.status_code == 200, again.text
        assert again.json()["changed"] is False
        assert (again.json()["version"], again.json()["rules_version"]) == (1, 1)

        # export → import round trip
        exported = await client.get("/v1/jurisdiction", headers=DISPATCHER)  # the only county: default
        assert exported.status_code == 200, exported.text
        document = exported.json()
        assert document["county_code"] == DEMO_CODE and document["version"] == 1
        assert exported.headers["etag"] == f'"{body["digest"]}"'
        assert exported.headers["x-jurisdiction-version"] == "1" and exported.headers["x-rules-version"] == "1"
        county_feature = next(f for f in document["divisions"]["features"] if f["properties"]["level"] == "county")
        assert county_feature["properties"]["parent_code"] is None
        round_trip = await put(client, document)
        assert round_trip.status_code == 200 and round_trip.json()["changed"] is False
        assert round_trip.json()["digest"] == body["digest"]
        by_version = await client.get("/v1/jurisdiction", params={"county": DEMO_CODE, "version": 1}, headers=ADMIN)
        assert by_version.status_code == 200 and by_version.headers["etag"] == exported.headers["etag"]
        missing = await client.get("/v1/jurisdiction", params={"county": DEMO_CODE, "version": 9}, headers=ADMIN)
        assert missing.status_code == 404

        # one jurisdiction.changed event, with the versions; none for the no-op imports
        events = await events_for(kafka.bootstrap, {first_id})
        envelope, record = events[first_id]
        assert envelope.type == "jurisdiction.changed" and envelope.source == "/grid"
        assert record.key == DEMO_CODE.encode()
        data = envelope.data
        assert (data.county_code, data.version, data.rules_version, data.change) == (DEMO_CODE, 1, 1, "bundle")
        assert data.digest == body["digest"]
        await asyncio.sleep(0.5)
        seen = [
            decode_envelope(r.value).correlation_id
            for r in await read_topic(kafka.bootstrap, JURISDICTION_CHANGED, expect=10**9, timeout_s=1.0)
        ]
        assert again_id not in seen

        state = await county_state(client, DEMO_CODE)
        assert [v["version"] for v in state["bundle_versions"]] == [1]
        assert [(r["rules_version"], r["change"]) for r in state["rule_sets"]] == [(1, "bundle")]
        assert state["bundle_versions"][0]["imported_by"] == "t-ad…"  # token names are masked


async def test_counties_live_side_by_side(client: httpx.AsyncClient, demo: dict[str, Any]) -> None:
    a_code, b_code = "330141", "330142"
    county_a = derive(demo, a_code, "甲县", dx=1.0)
    county_b = derive(demo, b_code, "乙县", dx=2.0)
    ra, rb = await put(client, county_a), await put(client, county_b)
    assert ra.status_code == 200 and rb.status_code == 200, (ra.text, rb.text)
    assert ra.json()["version"] == 1 and rb.json()["version"] == 1
    b_export = (await client.get("/v1/jurisdiction", params={"county": b_code}, headers=DISPATCHER)).json()

    listed = (await client.get("/v1/counties", headers=DISPATCHER)).json()["counties"]
    assert {a_code, b_code} <= {c["county_code"] for c in listed}
    several = await client.get("/v1/jurisdiction", headers=DISPATCHER)
    assert several.status_code == 422 and "county" in several.json()["detail"]

    # re-import A with a renamed grid: A goes to version 2, B is untouched
    changed_a = copy.deepcopy(county_a)
    grid = next(f for f in changed_a["divisions"]["features"] if f["properties"]["level"] == "grid")
    grid["properties"]["name"] = "甲县改名网格"
    again = await put(client, changed_a)
    assert again.status_code == 200 and again.json()["changed"] is True
    assert (again.json()["version"], again.json()["rules_version"]) == (2, 2)
    a_grid = await client.get(f"/v1/divisions/{grid['properties']['code']}", headers=DISPATCHER)
    assert a_grid.json()["name"] == "甲县改名网格"
    state_b = await county_state(client, b_code)
    assert (state_b["version"], state_b["rules_version"]) == (1, 1)
    assert (await client.get("/v1/jurisdiction", params={"county": b_code}, headers=DISPATCHER)).json() == b_export

    # each county locates its own points
    for code, dx in ((a_code, 1.0), (b_code, 2.0)):
        located = await client.get(
            "/v1/locate", params={"lng": GRID1_POINT[0] + dx, "lat": GRID1_POINT[1]}, headers=DISPATCHER
        )
        assert located.status_code == 200, located.text
        assert located.json()["county"]["code"] == code
        assert located.json()["grid"]["code"] == f"{code}001001001"


# --------------------------------------------------------------------------- rejection


def _bow_tie(x: float, y: float, d: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x, y], [x + d, y + d], [x + d, y], [x, y + d], [x, y]]]}


def _index(data: dict[str, Any], code: str) -> int:
    return next(i for i, f in enumerate(data["divisions"]["features"]) if f["properties"]["code"] == code)


async def test_bad_bundle_is_rejected_whole_with_every_problem(client: httpx.AsyncClient, demo: dict[str, Any]) -> None:
    code = "330151"
    good = derive(demo, code, "丙县", dx=3.0)
    assert (await put(client, good)).json()["version"] == 1
    before = await county_state(client, code)

    bad = copy.deepcopy(good)
    features = bad["divisions"]["features"]
    i_parent = _index(bad, f"{code}001002")
    features[i_parent]["properties"]["parent_code"] = f"{code}999"  # unknown parent
    i_bow = _index(bad, f"{code}101001001")
    features[i_bow]["geometry"] = _bow_tie(122.04, 29.61, 0.01)  # self-intersecting polygon
    bad["rules"][1]["action"]["unit"] = "no-such-unit"  # unknown unit in a rule
    bad["matters"][2]["deadlines"]["normal"] = 0  # deadline out of range
    bad["rules"][0]["action"]["deadline_hours"] = 24 * 400  # rule deadline out of range

    response = await put(client, bad)
    assert response.status_code == 422, response.text
    body = response.json()
    assert "nothing was imported" in body["detail"]
    problems = {(p["path"], p["message"]) for p in body["problems"]}
    expected = {
        f"divisions.features[{i_parent}].properties.parent_code": f"unknown parent code {code}999",
        f"divisions.features[{i_bow}].geometry": "Self-intersection",
        "rules[1].action.unit": "unknown unit no-such-unit",
        "matters[2].deadlines.normal": "out of range",
        "rules[0].action.deadline_hours": "out of range",
    }
    for path, fragment in expected.items():
        assert any(p == path and fragment in m for p, m in problems), (path, sorted(problems))
    assert {p for p, _ in problems} == set(expected)

    after = await county_state(client, code)
    assert (after["version"], after["rules_version"], after["digest"]) == (1, 1, before["digest"])
    assert len(after["bundle_versions"]) == 1

    # a bad bundle for a new county creates nothing; shape errors and non-JSON are listed the same way
    fresh = copy.deepcopy(bad)
    fresh = derive(fresh, code, "丁县")
    fresh = json.loads(json.dumps(fresh).replace(code, "330152"))
    assert (await put(client, fresh)).status_code == 422
    assert (await client.get("/v1/counties/330152", headers=DISPATCHER)).status_code == 404
    shapeless = {"county_code": "330153", "name": "戊县", "units": [{"id": "x"}]}
    shape_response = await put(client, shapeless)
    assert shape_response.status_code == 422
    paths = {p["path"] for p in shape_response.json()["problems"]}
    assert {"divisions", "units[0].name", "units[0].kind"} <= paths
    not_json = await put(client, b"{not json")
    assert not_json.status_code == 422 and not_json.json()["problems"][0]["path"] == "$"


# --------------------------------------------------------------------------- rules


async def test_rules_are_versioned_and_validated(
    client: httpx.AsyncClient, kafka: TansuBroker, demo: dict[str, Any]
) -> None:
    code = "330161"
    bundle = derive(demo, code, "己县", dx=4.0)
    imported = (await put(client, bundle)).json()
    assert (imported["version"], imported["rules_version"]) == (1, 1)
    original_rules = bundle["rules"]

    new_rules = copy.deepcopy(original_rules[:3])
    new_rules[0]["priority"] = 5
    new_rules.append(
        {
            "id": "all-critical",
            "priority": 100,
            "description": "特急件一律 2 小时",
            "conditions": {"urgency": ["critical"]},
            "action": {"deadline_hours": 2},
        }
    )
    rid = str(uuid.uuid4())
    response = await put_rules(client, code, new_rules, request_id=rid)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["changed"] is True and (body["version"], body["rules_version"]) == (1, 2)

    current = (await client.get("/v1/rules", params={"county": code}, headers=DISPATCHER)).json()
    assert (current["version"], current["rules_version"]) == (1, 2)
    assert [r["id"] for r in current["rules"]] == ["gas-baisha", "gas-qingxi", "gas-fenglin", "all-critical"]
    old = (await client.get(f"/v1/counties/{code}/rules/1", headers=DISPATCHER)).json()
    assert old["rules_version"] == 1 and old["change"] == "bundle" and old["bundle_version"] == 1
    assert [r["id"] for r in old["rules"]] == [r["id"] for r in original_rules]
    newer = (await client.get(f"/v1/counties/{code}/rules/2", headers=DISPATCHER)).json()
    assert newer["change"] == "rules" and newer["created_by"] == "t-ad…" and len(newer["rules"]) == 4
    assert (await client.get(f"/v1/counties/{code}/rules/3", headers=DISPATCHER)).status_code == 404
    history = (await client.get(f"/v1/counties/{code}/rules", headers=DISPATCHER)).json()["rule_sets"]
    assert [h["rules_version"] for h in history] == [1, 2]

    # the same rules again (also wrapped in an object): no new version
    same = await put_rules(client, code, {"rules": new_rules})
    assert same.status_code == 200 and same.json()["changed"] is False and same.json()["rules_version"] == 2

    # bad rules: every problem, nothing changed
    bad = copy.deepcopy(new_rules)
    bad[0]["action"]["unit"] = "ghost"
    bad[1]["conditions"]["matter"] = ["XX999"]
    bad[2]["priority"] = bad[3]["priority"] = 7
    bad[3]["action"]["deadline_hours"] = -1
    rejected = await put_rules(client, code, bad)
    assert rejected.status_code == 422, rejected.text
    paths = {p["path"] for p in rejected.json()["problems"]}
    assert paths == {
        "rules[0].action.unit",
        "rules[1].conditions.matter[0]",
        "rules[3].priority",
        "rules[3].action.deadline_hours",
    }
    shape = await put_rules(client, code, [{"id": "x", "priority": "high"}])
    assert shape.status_code == 422 and shape.json()["problems"][0]["path"] == "rules[0].priority"
    assert (await put_rules(client, code, {"not_rules": []})).status_code == 422
    assert (await put_rules(client, "330199", new_rules)).status_code == 404
    state = await county_state(client, code)
    assert (state["version"], state["rules_version"]) == (1, 2)

    # export carries the current rules and round-trips; re-importing the original bundle brings its rules back
    exported = (await client.get("/v1/jurisdiction", params={"county": code}, headers=DISPATCHER)).json()
    assert [r["id"] for r in exported["rules"]] == ["gas-baisha", "gas-qingxi", "gas-fenglin", "all-critical"]
    assert (await put(client, exported)).json()["changed"] is False
    back_id = str(uuid.uuid4())
    back = (await put(client, bundle, request_id=back_id)).json()
    assert back["changed"] is True and (back["version"], back["rules_version"]) == (2, 3)

    events = await events_for(kafka.bootstrap, {rid, back_id})
    rules_event, bundle_event = events[rid][0].data, events[back_id][0].data
    assert (rules_event.county_code, rules_event.change, rules_event.version, rules_event.rules_version) == (
        code,
        "rules",
        1,
        2,
    )
    assert rules_event.digest == body["digest"]
    assert (bundle_event.change, bundle_event.version, bundle_event.rules_version) == ("bundle", 2, 3)


# --------------------------------------------------------------------------- locate


async def test_locate_in_every_crs(client: httpx.AsyncClient) -> None:
    assert (await put(client, read_bundle())).status_code == 200
    lng, lat = GRID1_POINT
    answers = []
    for crs, (x, y) in (
        ("wgs84", (lng, lat)),
        ("cgcs2000", (lng, lat)),
        ("gcj02", wgs84_to_gcj02(lng, lat)),
        ("bd09", wgs84_to_bd09(lng, lat)),
    ):
        response = await client.get("/v1/locate", params={"lng": x, "lat": y, "crs": crs}, headers=DISPATCHER)
        assert response.status_code == 200, (crs, response.text)
        answers.append(response.json())
    for body in answers:
        assert body["level"] == "grid"
        assert body["grid"] == {"code": "330127001001001", "name": "白沙社区第1网格"}
        assert body["village"] == {"code": "330127001001", "name": "白沙社区"}
        assert body["township"] == {"code": "330127001", "name": "白沙街道"}
        assert body["county"] == {"code": DEMO_CODE, "name": "青溪县"}
        assert abs(body["wgs84"]["lng"] - lng) < 1e-7 and abs(body["wgs84"]["lat"] - lat) < 1e-7
    # the raw GCJ-02 numbers, read as WGS-84, are hundreds of metres away: a different answer or none
    gx, gy = wgs84_to_gcj02(lng, lat)
    raw = await client.get("/v1/locate", params={"lng": gx, "lat": gy}, headers=DISPATCHER)
    assert raw.status_code == 404 or raw.json()["grid"]["code"] != "330127001001001"

    outside = await client.get("/v1/locate", params={"lng": 116.397, "lat": 39.909}, headers=DISPATCHER)
    assert outside.status_code == 404 and "outside every grid" in outside.json()["detail"]
    invalid: list[dict[str, Any]] = [
        {"lng": lng, "lat": lat, "crs": "epsg3857"},
        {"lng": 190, "lat": lat},
        {"lng": lng, "lat": -95},
        {"lng": "abc", "lat": lat},
        {"lng": "nan", "lat": lat},
        {"lng": lng, "lat": "inf"},
        {"lat": lat},
    ]
    for params in invalid:
        bad = await client.get("/v1/locate", params=params, headers=DISPATCHER)
        assert bad.status_code == 422, (params, bad.text)


async def test_locate_falls_back_only_when_asked(client: httpx.AsyncClient, demo: dict[str, Any]) -> None:
    code, dx = "330171", 5.0
    holed = derive(demo, code, "庚县", dx=dx)
    holed["divisions"]["features"].pop(_index(holed, f"{code}001001003"))  # 白沙社区第3网格 removed
    assert (await put(client, holed)).status_code == 200
    params = {"lng": 119.003 + dx, "lat": 29.600}
    strict = await client.get("/v1/locate", params=params, headers=DISPATCHER)
    assert strict.status_code == 404
    assert f"village {code}001001" in strict.json()["detail"] and "fallback=true" in strict.json()["detail"]
    loose = await client.get("/v1/locate", params={**params, "fallback": "true"}, headers=DISPATCHER)
    assert loose.status_code == 200
    assert loose.json()["level"] == "village" and loose.json()["grid"] is None
    assert loose.json()["village"]["code"] == f"{code}001001"


# --------------------------------------------------------------------------- browse


async def test_browse_divisions_units_matters(client: httpx.AsyncClient) -> None:
    assert (await put(client, read_bundle())).status_code == 200
    grid = (await client.get("/v1/divisions/330127001001001", headers=DISPATCHER)).json()
    assert (grid["county_code"], grid["level"], grid["name"]) == (DEMO_CODE, "grid", "白沙社区第1网格")
    assert [p["code"] for p in grid["parents"]] == ["330127001001", "330127001", DEMO_CODE]
    assert grid["children"] == [] and grid["geometry"]["type"] == "Polygon"
    township = (await client.get("/v1/divisions/330127001?geometry=false", headers=DISPATCHER)).json()
    assert [c["code"] for c in township["children"]] == ["330127001001", "330127001002", "330127001003"]
    assert "geometry" not in township and township["parents"][0]["code"] == DEMO_CODE
    assert (await client.get("/v1/divisions/330127999999", headers=DISPATCHER)).status_code == 404

    grids = (await client.get(f"/v1/divisions?county={DEMO_CODE}&level=grid", headers=DISPATCHER)).json()
    assert len(grids["divisions"]) == 46
    kids = (await client.get(f"/v1/divisions?county={DEMO_CODE}&parent=330127101", headers=DISPATCHER)).json()
    assert all(d["parent_code"] == "330127101" for d in kids["divisions"]) and kids["divisions"]

    units = (
        await client.get("/v1/units", params={"county": DEMO_CODE, "township": "330127101"}, headers=DISPATCHER)
    ).json()["units"]
    ids = {u["id"] for u in units}
    assert {"330127101-zfd", "pz-pcs-qingxi"} <= ids and "330127001-zfd" not in ids
    assert set(units[0]) == {"id", "name", "kind", "township_code", "department", "covers"}
    agencies = (
        await client.get("/v1/units", params={"county": DEMO_CODE, "kind": "stationed_agency"}, headers=DISPATCHER)
    ).json()["units"]
    assert agencies and all(u["kind"] == "stationed_agency" and u["department"] and u["covers"] for u in agencies)
    assert (await client.get("/v1/units", params={"kind": "nope"}, headers=DISPATCHER)).status_code == 422
    assert (await client.get("/v1/units", params={"county": "999999"}, headers=DISPATCHER)).status_code == 404

    matters = (await client.get("/v1/matters", params={"county": DEMO_CODE}, headers=DISPATCHER)).json()["matters"]
    assert len(matters) == 57
    first = next(m for m in matters if m["code"] == "SR001")
    assert first["name"] == "占道经营" and "devolved_to" in first
    assert first["deadlines"]["normal"] == {"working_days": 5}
    devolved = (
        await client.get("/v1/matters", params={"county": DEMO_CODE, "township": "330127101"}, headers=DISPATCHER)
    ).json()["matters"]
    assert devolved and all("330127101" in m["devolved_to"] for m in devolved) and len(devolved) < 57

    rules = (await client.get("/v1/rules", params={"county": DEMO_CODE}, headers=DISPATCHER)).json()
    assert rules["county_code"] == DEMO_CODE and len(rules["rules"]) == 7
    assert [r["priority"] for r in rules["rules"]] == sorted(r["priority"] for r in rules["rules"])


# --------------------------------------------------------------------------- auth, start-up, replicas


async def test_auth(client: httpx.AsyncClient) -> None:
    bundle = read_bundle()
    assert (await put(client, bundle, headers={})).status_code == 401
    assert (await put(client, bundle, headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await put(client, bundle, headers=DISPATCHER)).status_code == 403
    assert (await put(client, bundle, headers={"Authorization": "Bearer t-unit"})).status_code == 403
    rules_put = await client.put(f"/v1/counties/{DEMO_CODE}/rules", json=[], headers=DISPATCHER)
    assert rules_put.status_code == 403
    assert (await client.put(f"/v1/counties/{DEMO_CODE}/rules", json=[])).status_code == 401
    for path in (
        "/v1/locate?lng=119.003&lat=29.615",
        f"/v1/jurisdiction?county={DEMO_CODE}",
        f"/v1/rules?county={DEMO_CODE}",
        "/v1/divisions/330127001",
        f"/v1/units?county={DEMO_CODE}",
        f"/v1/matters?county={DEMO_CODE}",
        "/v1/counties",
    ):
        assert (await client.get(path)).status_code == 401, path
        assert (await client.get(path, headers={"Authorization": "Bearer t-unit"})).status_code in (200, 404), path


async def test_snapshots_load_at_start_up_and_follow_other_replicas(
    own_database_url: str, kafka: TansuBroker, demo: dict[str, Any]
) -> None:
    settings = settings_for(own_database_url, kafka.bootstrap, snapshot_refresh_s=0.2)
    async with serve(create_app(settings)) as first:
        ready = (await first.get("/readyz")).json()
        assert ready["checks"]["jurisdiction"]["ok"] is False  # nothing imported yet (not required)
        nothing = await first.get("/v1/locate", params={"lng": 119.003, "lat": 29.615}, headers=DISPATCHER)
        assert nothing.status_code == 404 and "no county jurisdiction is loaded" in nothing.json()["detail"]
        assert (await first.get("/v1/rules", headers=DISPATCHER)).status_code == 404
        outcome = await put_bundle(first, read_bundle(), token="t-admin")
        assert outcome["changed"] is True and outcome["version"] == 1
    async with serve(create_app(settings)) as second, serve(create_app(settings)) as third:
        # loaded from the database at start-up
        located = await second.get(
            "/v1/locate", params=dict(zip(("lng", "lat"), GRID1_POINT, strict=True)), headers=DISPATCHER
        )
        assert located.status_code == 200 and located.json()["grid"]["code"] == "330127001001001"
        ready = (await second.get("/readyz")).json()
        assert ready["status"] in ("ready", "degraded") and "330127 v1/r1" in ready["checks"]["jurisdiction"]["detail"]

        # a rules change on one replica reaches the other
        response = await put_rules(second, DEMO_CODE, demo["rules"][:2])
        assert response.status_code == 200 and response.json()["rules_version"] == 2

        async def third_sees_it() -> bool:
            body = (await third.get("/v1/rules", headers=DISPATCHER)).json()
            return bool(body["rules_version"] == 2 and len(body["rules"]) == 2)

        await eventually(third_sees_it, timeout_s=10)
        # … and a rules change made on a replica whose snapshot is stale is validated against the database state
        again = await put_rules(third, DEMO_CODE, demo["rules"][:3])
        assert again.status_code == 200 and again.json()["rules_version"] == 3
        metrics = (await third.get("/metrics")).text
        assert 'grid_jurisdiction_version{county="330127",kind="rules"} 3.0' in metrics


async def test_concurrent_imports_of_one_county_get_distinct_versions(
    own_database_url: str, kafka: TansuBroker, demo: dict[str, Any]
) -> None:
    async with serve(create_app(settings_for(own_database_url, kafka.bootstrap))) as client:
        variants = [dict(demo, name=f"青溪县{i}") for i in range(6)]
        responses = await asyncio.gather(*(put(client, v) for v in variants))
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        assert sorted(r.json()["version"] for r in responses) == [1, 2, 3, 4, 5, 6]
        last = max(responses, key=lambda r: r.json()["version"]).json()
        current = (await client.get("/v1/jurisdiction", headers=DISPATCHER)).json()
        assert (current["version"], current["name"]) == (6, last["name"])
        # one jurisdiction.changed per import, each with its version
        events = await events_for(kafka.bootstrap, {r.headers["x-request-id"] for r in responses})
        assert sorted(env.data.version for env, _ in events.values()) == [1, 2, 3, 4, 5, 6]
