"""任务推送 against a real local HTTP receiver: deliveries signed with HMAC-SHA256 (checked by the receiver),
retried with backoff after the receiver fails, dead-lettered (visible) after N failures, and nothing lost
across a restart of dispatch (deliveries pending when it stopped, and transitions written while no pusher
ran, all arrive). Real PostgreSQL, Tansu and HTTP; the pushing dispatch instances are started and stopped
by the tests (the platform's own dispatch does not push)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from services.dispatch.forces.signing import verify
from shared.embedded import TansuBroker, free_port
from tests.helpers import eventually
from tests.integration.test_dispatch_support import (
    ADMIN,
    STAFF_SPEC,
    Stack,
    bearer,
    dispatch_instance,
    platform,
    record,
    unit,
)
from tests.integration.test_forces import FORCES

ZFD, FENGLIN = "330127101-zfd", "330127102-zfd"
MEMBER_TOKENS = {
    f"m-{n}": {"role": "member", "township": "330127101", "unit": ZFD, "member": f"{ZFD}-m{n:02d}"} for n in (1, 2, 3)
}
STAFF = orjson.dumps({**STAFF_SPEC, **MEMBER_TOKENS}).decode()
SECRET = {"/unit": "unit-secret-0123456789", "/flaky": "flaky-secret-0123456789", "/dead": "dead-secret-0123456789",
          "/restart": "restart-secret-0123456789"}  # fmt: skip
PUSH = {"push_poll_s": 0.1, "push_max_attempts": 3, "push_backoff_s": 0.2, "push_timeout_s": 2, "staff_tokens": STAFF}
#: For the restart: enough attempts that nothing is dead-lettered while the receiver is down.
PATIENT = {**PUSH, "push_max_attempts": 50}


@dataclass
class Receiver:
    """A local webhook receiver: checks every signature, fails on demand, records what it accepted."""

    port: int
    down: bool = False
    fail_first: int = 2  # /flaky answers 500 to the first attempts of each delivery
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    accepted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bad_signatures: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify(SECRET[request.path], int(request.headers["X-ZHPT-Timestamp"]), body,
                    request.headers["X-ZHPT-Signature"])  # fmt: skip
        if not ok:
            self.bad_signatures += 1
            return web.Response(status=401)
        key = (request.path, request.headers["X-ZHPT-Delivery"])
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if self.down or request.path == "/dead":
            return web.Response(status=503)
        if request.path == "/flaky" and self.attempts[key] <= self.fail_first:
            return web.Response(status=500)
        self.accepted.setdefault(request.path, []).append(orjson.loads(body))
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver(free_port())
    app = web.Application()
    app.router.add_post("/{tail:.*}", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", r.port)
    await site.start()
    try:
        yield r
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
async def stack(database_url: str, module_broker: TansuBroker) -> AsyncIterator[Stack]:
    async with platform(database_url, module_broker.bootstrap, staff_tokens=STAFF, push_poll_s=0) as s:
        assert (await s.dispatch.put("/v1/forces/330127", json=FORCES, headers=ADMIN)).status_code == 200
        yield s


async def subscribe(stack: Stack, headers: dict[str, str], url: str, path: str, **body: Any) -> str:
    r = await stack.dispatch.post("/v1/forces/webhooks", json={"url": url, "secret": SECRET[path], **body},
                                  headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def deliveries(stack: Stack, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = await stack.dispatch.get("/v1/forces/deliveries", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_signed_retried_and_dead_lettered(stack: Stack) -> None:
    d = stack.dispatch
    async with receiver() as rx, dispatch_instance(stack.grid_app, stack.database_url, stack.bootstrap, **PUSH):
        await subscribe(stack, unit(ZFD), rx.url("/unit"), "/unit")
        await subscribe(stack, bearer("m-2"), rx.url("/flaky"), "/flaky")
        dead_sub = await subscribe(stack, bearer("m-3"), rx.url("/dead"), "/dead")
        # A member subscribes for itself only; the hotline not at all.
        other = await d.post("/v1/forces/webhooks", json={"url": rx.url("/x"), "secret": "x" * 16,
                             "member": f"{ZFD}-m03"}, headers=bearer("m-2"))  # fmt: skip
        assert other.status_code == 403
        assert (await d.post("/v1/forces/webhooks", json={"url": rx.url("/x"), "secret": "x" * 16},
                             headers=bearer("t-hotline"))).status_code == 403  # fmt: skip

        cases = []
        for who in ("m02", "m03"):
            c = await stack.case_of(await stack.post("12345", record("12345")))
            assert c["unit"] == ZFD
            r = await d.post(f"/v1/cases/{c['id']}/actions/accept", json={"expected_version": 2}, headers=unit(ZFD))
            assert r.status_code == 200, r.text
            r = await d.post(f"/v1/forces/cases/{c['id']}/assign", json={"assignee": f"{ZFD}-{who}"},
                             headers=bearer("m-1"))  # fmt: skip
            assert r.status_code == 200, r.text
            cases.append(c["id"])

        # The unit gets every transition of its cases: dispatched, accepted, member_assigned (2 cases → 6).
        async def unit_got_all() -> bool:
            return len({(p["case_id"], p["version"]) for p in rx.accepted.get("/unit", [])}) == 6

        await eventually(unit_got_all, timeout_s=30)
        got = sorted((cases.index(p["case_id"]), p["version"], p["event_type"]) for p in rx.accepted["/unit"])
        assert [g for g in got if g[0] == 0] == [(0, 2, "case.dispatched"), (0, 3, "case.accepted"),
                                                 (0, 4, "case.member_assigned")]  # fmt: skip
        assert all("lng" not in p and "phone" not in str(p) for p in rx.accepted["/unit"])

        # m02's delivery failed twice (HTTP 500), then arrived on the third attempt, once.
        async def flaky_delivered() -> list[dict[str, Any]]:
            return [x for x in await deliveries(stack, bearer("m-2")) if x["status"] == "delivered"]

        (flaky,) = await eventually(flaky_delivered, timeout_s=30)
        assert flaky["attempts"] == 3 and flaky["event_type"] == "case.member_assigned"
        assert [p["case_id"] for p in rx.accepted["/flaky"]] == [cases[0]]
        assert rx.attempts[("/flaky", str(flaky["id"]))] == 3

        # m03's receiver always fails: after 3 attempts the delivery is a dead letter, listed with the error.
        async def dead_listed() -> list[dict[str, Any]]:
            return await deliveries(stack, bearer("m-3"), status="dead")

        (dead,) = await eventually(dead_listed, timeout_s=30)
        assert (dead["attempts"], dead["last_error"], dead["webhook_id"]) == (3, "HTTP 503", dead_sub)
        assert dead["payload"]["case_id"] == cases[1] and dead["payload"]["assignees"] == [f"{ZFD}-m03"]
        # Sent again by hand: one more failure, dead again (attempts 4), still listed.
        assert (await d.post(f"/v1/forces/deliveries/{dead['id']}/retry", headers=bearer("m-3"))).status_code == 200

        async def dead_again() -> bool:
            items = await deliveries(stack, bearer("m-3"), status="dead")
            return bool(items) and items[0]["attempts"] == 4

        await eventually(dead_again, timeout_s=30)
        assert rx.bad_signatures == 0
        # m02 sees only its own subscription's deliveries, not the unit's.
        assert {x["webhook_id"] for x in await deliveries(stack, bearer("m-2"))} == {flaky["webhook_id"]}


async def test_nothing_is_lost_across_a_restart_of_dispatch(stack: Stack) -> None:
    async with receiver() as rx:
        await subscribe(stack, unit(FENGLIN), rx.url("/restart"), "/restart")
        rx.down = True
        first: list[str] = []
        async with dispatch_instance(stack.grid_app, stack.database_url, stack.bootstrap, **PATIENT):
            for _ in range(3):
                c = await stack.case_of(await stack.post("gridworker", record("gridworker")))
                assert c["unit"] == FENGLIN, c
                first.append(c["id"])

            async def all_tried() -> bool:
                items = await deliveries(stack, unit(FENGLIN))
                return len(items) == 3 and all(x["attempts"] >= 1 and x["status"] == "pending" for x in items)

            await eventually(all_tried, timeout_s=30)
        # Dispatch (the pusher) is stopped: 3 deliveries pending; 2 more cases are written meanwhile.
        later = [(await stack.case_of(await stack.post("gridworker", record("gridworker"))))["id"] for _ in range(2)]
        rx.down = False
        async with dispatch_instance(stack.grid_app, stack.database_url, stack.bootstrap, **PATIENT):

            async def all_delivered() -> bool:
                items = await deliveries(stack, unit(FENGLIN))
                return len(items) == 5 and all(x["status"] == "delivered" for x in items)

            await eventually(all_delivered, timeout_s=30)
        # Exactly the 5 cases' dispatch transitions arrived: none lost, none twice.
        arrived = [(p["case_id"], p["event_type"]) for p in rx.accepted["/restart"]]
        assert sorted(arrived) == sorted((c, "case.dispatched") for c in first + later)
