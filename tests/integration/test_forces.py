"""力量调度 through the real platform (grid, intake, dispatch; PostgreSQL and Tansu): the people document,
positions converted to WGS-84, duty, suggestions, 派单到人 by the unit's leader (timeline and
``case.events``), and the ``member`` token's scope (its own tasks only; 0 cross-scope access)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from services.dispatch.forces.availability import RosterIndex
from services.dispatch.forces.people import ForcesDocument
from services.dispatch.forces.wiring import purge_once
from shared.calendar import default_calendar
from shared.embedded import TansuBroker
from shared.events import OPERATION_EVENTS, decode_envelope
from shared.geo import gcj02_to_wgs84
from tests.conftest import read_topic
from tests.helpers import eventually
from tests.integration.test_dispatch_support import (
    ADMIN,
    DISPATCHER,
    STAFF_SPEC,
    Stack,
    bearer,
    case_events,
    platform,
    record,
    unit,
)

ROOT = Path(__file__).resolve().parents[2]
FORCES = orjson.loads((ROOT / "deploy" / "demo" / "forces.json").read_bytes())
ZFD = "330127101-zfd"
M = {n: f"{ZFD}-m{n:02d}" for n in range(1, 10)}  # m01 leader, m02–m07 members, m08–m09 grid workers
OTHER = "330127102-zfd-m02"  # a member of 枫林镇's team
MEMBER_TOKENS = {
    **{f"m-{n}": {"role": "member", "township": "330127101", "unit": ZFD, "member": mid} for n, mid in M.items()},
    "m-other": {"role": "member", "township": "330127102", "unit": "330127102-zfd", "member": OTHER},
}
STAFF = orjson.dumps({**STAFF_SPEC, **MEMBER_TOKENS}).decode()
LEADER, M2, M3, M4 = bearer("m-1"), bearer("m-2"), bearer("m-3"), bearer("m-4")
ZFD_UNIT = unit(ZFD)
J = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
async def stack(database_url: str, module_broker: TansuBroker) -> AsyncIterator[Stack]:
    async with platform(database_url, module_broker.bootstrap, staff_tokens=STAFF) as s:
        response = await s.dispatch.put("/v1/forces/330127", json=FORCES, headers=ADMIN)
        assert response.status_code == 200, response.text
        yield s


async def accepted_case(stack: Stack) -> dict[str, Any]:
    c = await stack.case_of(await stack.post("12345", record("12345")))
    assert c["unit"] == ZFD, c
    r = await stack.dispatch.post(
        f"/v1/cases/{c['id']}/actions/accept", json={"expected_version": c["version"]}, headers=ZFD_UNIT
    )
    assert r.status_code == 200, r.text
    return r.json()["case"]


async def test_the_people_document_is_admin_only_and_checked(stack: Stack) -> None:
    d = stack.dispatch
    assert (await d.put("/v1/forces/330127", json=FORCES, headers=DISPATCHER)).status_code == 403
    bad = {**FORCES, "members": [*FORCES["members"], {**FORCES["members"][0], "member_id": "x", "unit": "nope"}]}
    r = await d.put("/v1/forces/330127", json=bad, headers=ADMIN)
    assert r.status_code == 422 and "unknown unit 'nope'" in r.text, r.text
    members = (await d.get(f"/v1/forces/members?unit={ZFD}", headers=DISPATCHER)).json()["items"]
    assert [m["member_id"] for m in members] == list(M.values())
    assert members[0]["role"] == "leader" and "****" in members[0]["phone"]  # masked for the dispatcher
    own = (await d.get(f"/v1/forces/members?unit={ZFD}", headers=ZFD_UNIT)).json()["items"]
    assert "****" not in own[0]["phone"]  # the unit's own account sees phones
    me = (await d.get("/v1/forces/members", headers=M2)).json()["items"]
    assert [m["member_id"] for m in me] == [M[2]]  # a member sees itself only


async def test_duty_at_a_moment_follows_the_roster(stack: Stack) -> None:
    # Friday 2026-12-04 10:00 in Shanghai: the day shift (08:00–20:00) of the 24-hour team.
    moment = "2026-12-04T10:00:00+08:00"
    r = await stack.dispatch.get(f"/v1/forces/units/{ZFD}/duty", params={"at": moment}, headers=DISPATCHER)
    assert r.status_code == 200, r.text
    index = RosterIndex(ForcesDocument.model_validate(FORCES).shifts)
    at = datetime.fromisoformat(moment)
    on = {i["member_id"] for i in r.json()["items"] if i["on_duty"]}
    assert on == {m for m in M.values() if index.duty(m, at, default_calendar()) is not None}
    assert on == {M[1], M[2], M[3], M[4], M[8]}
    # 02:00 the next night: the night shift that began at 20:00.
    r = await stack.dispatch.get(
        f"/v1/forces/units/{ZFD}/duty", params={"at": "2026-12-05T02:00:00+08:00"}, headers=DISPATCHER
    )
    night = {i["member_id"]: i for i in r.json()["items"] if i["on_duty"]}
    assert set(night) == {M[5], M[6], M[7], M[9]}
    assert night[M[5]]["on_duty_since"] == "2026-12-04T20:00:00+08:00"
    # Another unit's token, and a member, do not see the unit's duty.
    assert (await stack.dispatch.get(f"/v1/forces/units/{ZFD}/duty", headers=unit("330127102-zfd"))).status_code == 404
    assert (await stack.dispatch.get(f"/v1/forces/units/{ZFD}/duty", headers=M2)).status_code == 404


async def test_suggest_assign_and_the_member_scope(stack: Stack) -> None:
    d = stack.dispatch
    # Everyone of the team on duty round the clock (deterministic whatever the hour), m04 busy.
    everyone = [{"unit": ZFD, "label": "全天", "start": "00:00", "end": "00:00", "members": list(M.values())}]
    assert (await d.put("/v1/forces/330127/rosters", json={"shifts": everyone}, headers=ADMIN)).status_code == 200
    leave = {"busy": True, "reason": "请假"}
    assert (await d.post(f"/v1/forces/members/{M[4]}/status", json=leave, headers=M4)).status_code == 200
    assert (await d.post(f"/v1/forces/members/{M[3]}/status", json={"busy": True}, headers=M2)).status_code == 404

    case = await accepted_case(stack)
    other_case = await accepted_case(stack)
    detail = (await d.get(f"/v1/cases/{case['id']}", headers=ADMIN)).json()
    point = detail["incident"]["location"]
    # m02 posts its position in GCJ-02 near the case: stored in WGS-84.
    now = datetime.now(UTC)
    gcj = {"lng": point["lng"] + 0.0045, "lat": point["lat"] + 0.0045}  # GCJ-02 offsets are ~500 m here
    batch = {"positions": [{"member_id": M[2], "at": now.isoformat(), "crs": "gcj02", **gcj}]}
    r = await d.post("/v1/forces/positions", json=batch, headers=M2)
    assert r.json() == {"received": 1, "stored": 1}, r.text
    assert (await d.post("/v1/forces/positions", json={"positions": [{**batch["positions"][0], "member_id": M[3]}]},
                         headers=M2)).status_code == 403  # fmt: skip
    mine = (await d.get("/v1/forces/positions", headers=M2)).json()["items"]
    lng, lat = gcj02_to_wgs84(gcj["lng"], gcj["lat"])
    # Stored to 1e-7° (about a centimetre): compared within that. 存储精度 1e-7 度。
    assert [(p["member_id"], p["lng"], p["lat"]) for p in mine] == [
        (M[2], pytest.approx(lng, abs=1e-7), pytest.approx(lat, abs=1e-7))
    ]
    stale = {"positions": [{"member_id": M[3], "at": (now - timedelta(hours=25)).isoformat(), "lng": 119, "lat": 29.6}]}
    assert (await d.post("/v1/forces/positions", json=stale, headers=bearer("m-3"))).json()["stored"] == 0

    # Suggestions: m02 (fresh position) first with its distance; m04 (busy) not at all; teams follow their best.
    r = await d.get(f"/v1/forces/cases/{case['id']}/suggestions", headers=LEADER)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items[0]["id"] == M[2] and items[0]["distance_m"] is not None and "米" in items[0]["reasons"][0]
    assert M[4] not in {i["id"] for i in items}
    assert (await d.get(f"/v1/forces/cases/{case['id']}/suggestions", headers=M2)).status_code == 403

    # Only the leader (acting for the unit), the unit or a dispatcher assigns; a plain member may not.
    no = await d.post(f"/v1/forces/cases/{case['id']}/assign", json={"assignee": M[2]}, headers=M3)
    assert no.status_code == 403, no.text
    bad = await d.post(f"/v1/forces/cases/{case['id']}/assign", json={"assignee": OTHER}, headers=LEADER)
    assert bad.status_code == 422, bad.text
    ok = await d.post(f"/v1/forces/cases/{case['id']}/assign", json={"assignee": M[2], "note": "就近处置"},
                      headers=LEADER)  # fmt: skip
    assert ok.status_code == 200, ok.text
    assert ok.json()["transitions"][0]["event_type"] == "case.member_assigned"
    team = await d.post(f"/v1/forces/cases/{other_case['id']}/assign", json={"assignee": f"{ZFD}-t2"},
                        headers=DISPATCHER)  # fmt: skip
    assert team.status_code == 200, team.text

    # The member's scope: its own tasks only.
    listed = (await d.get("/v1/cases", headers=M2)).json()["items"]
    assert [c["id"] for c in listed] == [case["id"]]
    assert (await d.get(f"/v1/cases/{other_case['id']}", headers=M2)).status_code == 404
    assert (await d.get(f"/v1/cases/{case['id']}", headers=bearer("m-other"))).status_code == 404
    assert (await d.get("/v1/cases", headers=bearer("m-other"))).json()["items"] == []
    assert (await d.get("/v1/cases", headers=M3)).json()["items"] == []
    assert [c["id"] for c in (await d.get("/v1/cases", headers=bearer("m-5"))).json()["items"]] == [other_case["id"]]
    assert (await d.get(f"/v1/forces/members/{M[3]}/track", headers=M2)).status_code == 404
    track = (await d.get(f"/v1/forces/members/{M[2]}/track", headers=M2)).json()["points"]
    assert track[0]["lat"] == pytest.approx(lat, abs=1e-7)
    assert (await d.get(f"/v1/forces/units/{ZFD}/duty", headers=M2)).status_code == 404

    # The member acts on its task through the same action API; another member may not.
    version = ok.json()["case"]["version"]
    r = await d.post(f"/v1/cases/{case['id']}/actions/resolve", json={"expected_version": version, "result": "已处置"},
                     headers=M3)  # fmt: skip
    assert r.status_code == 404, r.text
    r = await d.post(f"/v1/cases/{case['id']}/actions/resolve", json={"expected_version": version, "result": "已处置"},
                     headers=M2)  # fmt: skip
    assert r.status_code == 200, r.text

    timeline = (await d.get(f"/v1/cases/{case['id']}/timeline", headers=M2)).json()["entries"]
    assigned = next(e for e in timeline if e["action"] == "assign_member")
    assert (assigned["actor_role"], assigned["actor_id"], assigned["body"]["members"]) == ("unit", M[1], [M[2]])
    assert timeline[-1]["actor_role"] == "member" and timeline[-1]["actor_id"] == M[2]

    events = await case_events(stack.bootstrap, {case["id"], other_case["id"]}, expect=7)
    by_type = [(str(e.data.case_id), e.type) for e in events]
    assert by_type.count((case["id"], "case.member_assigned")) == 1
    env = next(e for e in events if e.type == "case.member_assigned" and str(e.data.case_id) == case["id"])
    assert (env.data.assignee, env.data.assignee_kind, env.data.assignees) == (M[2], "member", [M[2]])
    team_env = next(e for e in events if e.type == "case.member_assigned" and str(e.data.case_id) == other_case["id"])
    assert team_env.data.assignee_kind == "team" and team_env.data.assignees == [M[5], M[6], M[7]]
    # Positions are personal data: never on Kafka.
    assert all("lng" not in orjson.dumps(e.data.details).decode() for e in events)


async def test_tracks_older_than_24_hours_are_purged(stack: Stack) -> None:
    ctx = stack.dispatch_app.state.dispatch
    old, recent = datetime.now(UTC) - timedelta(hours=25), datetime.now(UTC) - timedelta(hours=23)
    insert = text("INSERT INTO dispatch.force_tracks (member_id, at, lng, lat) VALUES (:m, :at, 119.0, 29.6)")
    async with ctx.runtime.uow() as uow:
        await uow.session.execute(insert, [{"m": "purge-old", "at": old}, {"m": "purge-recent", "at": recent}])
    assert await purge_once(ctx) >= 1
    left = await stack.sql("SELECT member_id FROM dispatch.force_tracks WHERE member_id LIKE 'purge-%'")
    assert [r[0] for r in left] == ["purge-recent"]


async def test_a_joint_operation_confirmed_late_concluded_and_applied(stack: Stack) -> None:
    d = stack.dispatch
    accepted = await accepted_case(stack)
    waiting = await stack.case_of(await stack.post("12345", record("12345")))  # dispatched, not accepted
    now = datetime.now(UTC)
    spec = {
        "township": "330127101", "lead_unit": ZFD, "units": ["pz-pcs-qingxi", "330127101-yjgl"],
        "starts_at": (now - timedelta(minutes=5)).isoformat(), "ends_at": (now + timedelta(hours=2)).isoformat(),
        "place": "青溪镇桥头菜场", "cases": [accepted["id"], waiting["id"]], "note": "占道经营联合整治",
    }  # fmt: skip
    assert (await d.post("/v1/forces/operations", json=spec, headers=ZFD_UNIT)).status_code == 403
    opened = await d.post("/v1/forces/operations", json=spec, headers=bearer("t-disp-qx"))
    assert opened.status_code == 201, opened.text
    op = opened.json()
    assert op["units"] == [ZFD, "pz-pcs-qingxi", "330127101-yjgl"] and op["state"] == "open"
    assert op["late_units"] == op["units"]  # started 5 minutes ago, nobody confirmed yet
    oid, pcs = op["id"], unit("pz-pcs-qingxi")
    assert (await d.get(f"/v1/forces/operations/{oid}", headers=unit("330127102-zfd"))).status_code == 404
    assert (await d.get(f"/v1/forces/operations/{oid}", headers=M2)).status_code == 404

    r = await d.post(f"/v1/forces/operations/{oid}/confirm", json={"expected_version": 1, "people": [M[2], M[3]]},
                     headers=ZFD_UNIT)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["confirmations"][ZFD]["late"] is True and r.json()["confirmed_late"] == [ZFD]
    r = await d.post(f"/v1/forces/operations/{oid}/confirm", json={"expected_version": 2, "people": ["pcs-1"]},
                     headers=pcs)  # fmt: skip
    assert r.status_code == 200 and r.json()["late_units"] == ["330127101-yjgl"], r.text
    again = await d.post(f"/v1/forces/operations/{oid}/confirm", json={"expected_version": 3, "people": ["x"]},
                         headers=pcs)  # fmt: skip
    assert again.status_code == 409, again.text
    assert (await d.post(f"/v1/forces/operations/{oid}/conclude", json={"expected_version": 3, "result": "r"},
                         headers=pcs)).status_code == 403  # fmt: skip  # only the lead unit or command

    r = await d.post(f"/v1/forces/operations/{oid}/conclude",
                     json={"expected_version": 3, "result": "已取缔占道摊点 12 处", "apply": "resolve"},
                     headers=ZFD_UNIT)  # fmt: skip
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["state"], done["absent"], done["resolved_cases"]) == ("concluded", ["330127101-yjgl"],
                                                                      [accepted["id"]])  # fmt: skip
    assert [c["case_id"] for c in done["left_cases"]] == [waiting["id"]]
    case = (await d.get(f"/v1/cases/{accepted['id']}", headers=ADMIN)).json()
    assert case["state"] == "resolved"
    last = (await d.get(f"/v1/cases/{accepted['id']}/timeline", headers=ADMIN)).json()["entries"][-1]
    assert (last["action"], last["actor_id"], last["note"]) == ("resolve", f"joint-operation:{oid}",
                                                                "联合执法：已取缔占道摊点 12 处")  # fmt: skip
    assert (await d.get(f"/v1/cases/{waiting['id']}", headers=ADMIN)).json()["state"] == "dispatched"
    trail = (await d.get(f"/v1/forces/operations/{oid}/timeline", headers=pcs)).json()["entries"]
    assert [(e["version"], e["action"], e["actor_unit"]) for e in trail] == [
        (1, "open", None), (2, "confirm", ZFD), (3, "confirm", "pz-pcs-qingxi"), (4, "conclude", ZFD)
    ]  # fmt: skip
    assert (await d.post(f"/v1/forces/operations/{oid}/cancel", json={"expected_version": 4, "reason": "x"},
                         headers=DISPATCHER)).status_code == 409  # fmt: skip

    # Its transitions are on operation.events (through the outbox): 4 events, the lateness and absence in them.
    async def published() -> list[Any]:
        records = await read_topic(stack.bootstrap, OPERATION_EVENTS, expect=10**9, timeout_s=1.0)
        found = [decode_envelope(r.value) for r in records]
        return [e for e in found if str(e.data.operation_id) == oid]

    events = sorted(await eventually(lambda: _at_least(published, 4), timeout_s=30), key=lambda e: e.data.version)
    assert [e.type for e in events] == ["operation.opened", "operation.confirmed", "operation.confirmed",
                                        "operation.concluded"]  # fmt: skip
    assert (events[1].data.unit, events[1].data.late, events[1].data.people) == (ZFD, True, [M[2], M[3]])
    assert events[3].data.absent == ["330127101-yjgl"]
    assert events[3].data.confirmed_late == sorted([ZFD, "pz-pcs-qingxi"])
    assert len({e.id for e in events}) == 4


async def _at_least(fetch: Any, n: int) -> list[Any] | None:
    found = await fetch()
    return found if len(found) >= n else None
