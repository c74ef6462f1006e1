"""Recording devolution decisions through the grid API: real HTTP, real PostgreSQL, real Tansu.

登记下放调整：真实 HTTP、PostgreSQL 与 Tansu；历史不改写，jurisdiction.changed 携带差异。
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.grid.app import create_app
from services.grid.load_demo import DEMO_BUNDLE
from shared.embedded import TansuBroker
from shared.jurisdiction import parse_bundle
from shared.jurisdiction.devolution import local_day
from tests.helpers import serve
from tests.integration.test_grid_registry import ADMIN, DISPATCHER, events_for, put, settings_for

CODE = "330127"
QINGXI, FENGLIN = "330127101", "330127102"
TODAY = local_day(datetime.now(UTC))
#: Far enough ahead that the test never straddles a Shanghai midnight. 足够靠后，避免跨越午夜。
DAY1 = (TODAY + timedelta(days=10)).isoformat()
DAY2 = (TODAY + timedelta(days=40)).isoformat()


@pytest.fixture(scope="module")
async def client(database_url: str, kafka: TansuBroker) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings_for(database_url, kafka.bootstrap))) as c:
        response = await put(c, json.loads(DEMO_BUNDLE.read_text(encoding="utf-8")))
        assert response.status_code == 200, response.text
        yield c


async def post(client: httpx.AsyncClient, body: Any, headers: dict[str, str] = ADMIN, rid: str = "") -> httpx.Response:
    return await client.post(
        f"/v1/counties/{CODE}/devolution/changes",
        json=body,
        headers={**headers, "X-Request-ID": rid or str(uuid.uuid4())},
    )


def item(township: str, matter: str, mode: str, day: str) -> dict[str, str]:
    return {"township": township, "matter": matter, "mode": mode, "effective_from": day}


async def entries(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/counties/{CODE}/devolution", headers=DISPATCHER)
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()["entries"]
    return listed


async def test_a_decision_is_recorded_versioned_and_published(client: httpx.AsyncClient, kafka: TansuBroker) -> None:
    before = await client.get(f"/v1/counties/{CODE}", headers=DISPATCHER)
    version = before.json()["version"]
    rid = f"devolution-{uuid.uuid4()}"
    decision = {
        "document": "青政发〔2026〕30号",
        "items": [item(FENGLIN, "WJ002", "entrusted", DAY1), item(QINGXI, "WJ002", "none", DAY1)],
    }
    response = await post(client, decision, rid=rid)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["changed"] is True and body["version"] == version + 1 and body["updated_by"] == "t-ad…"
    assert [(i["township"], i["before"], i["after"]) for i in body["items"]] == [
        (FENGLIN, "none", "entrusted"),
        (QINGXI, "devolved", "none"),
    ]

    listed = await entries(client)
    wj002 = [e for e in listed if e["matter"] == "WJ002"]
    assert {(e["township"], e["mode"], e["effective_from"], e["effective_to"], e["document"]) for e in wj002} == {
        (FENGLIN, "entrusted", DAY1, None, "青政发〔2026〕30号"),
        (QINGXI, "devolved", None, DAY1, None),  # the undated entry, closed on the day: nothing before it changes
    }

    found = await events_for(kafka.bootstrap, {rid})
    env, _ = found[rid]
    assert env.data.change == "devolution" and env.data.version == version + 1
    assert env.data.devolution.document == "青政发〔2026〕30号"
    assert [(i.township, i.after) for i in env.data.devolution.items] == [(FENGLIN, "entrusted"), (QINGXI, "none")]

    changes = await client.get(f"/v1/counties/{CODE}/devolution/changes", headers=DISPATCHER)
    assert changes.status_code == 200
    recorded = changes.json()["changes"]
    assert [(c["version"], c["document"], c["recorded_by"]) for c in recorded] == [
        (version + 1, "青政发〔2026〕30号", "t-ad…")
    ]

    # The export carries the dated entries and imports back as the same content (changed: false).
    exported = await client.get(f"/v1/jurisdiction?county={CODE}", headers=DISPATCHER)
    assert exported.status_code == 200
    bundle, problems = parse_bundle(exported.json())
    assert problems == [] and bundle is not None
    assert {(e.township, e.matter) for e in bundle.devolution_entries if e.matter == "WJ002"} == {
        (FENGLIN, "WJ002"),
        (QINGXI, "WJ002"),
    }
    again = await put(client, exported.json())
    assert again.json()["changed"] is False


async def test_a_later_decision_keeps_the_history(client: httpx.AsyncClient) -> None:
    first = await entries(client)
    response = await post(client, {"document": "青政发〔2026〕41号", "items": [item(FENGLIN, "WJ002", "assist", DAY2)]})
    assert response.status_code == 200, response.text
    after = await entries(client)
    # Every earlier entry is still there; only the one in force on DAY2 got its end, on DAY2.
    changed = [e for e in first if e not in after]
    assert changed == [
        {
            "township": FENGLIN,
            "matter": "WJ002",
            "mode": "entrusted",
            "effective_from": DAY1,
            "effective_to": None,
            "document": "青政发〔2026〕30号",
        }
    ]
    assert {**changed[0], "effective_to": DAY2} in after
    assert {
        "township": FENGLIN,
        "matter": "WJ002",
        "mode": "assist",
        "effective_from": DAY2,
        "effective_to": None,
        "document": "青政发〔2026〕41号",
    } in after


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        ([item(FENGLIN, "SC001", "devolved", TODAY.isoformat())], "history is never rewritten"),
        ([item(FENGLIN, "SC001", "devolved", (TODAY - timedelta(days=30)).isoformat())], "never rewritten"),
        ([item("330127999", "SC001", "devolved", DAY1)], "unknown township"),
        ([item(FENGLIN, "XX999", "devolved", DAY1)], "unknown matter"),
        ([item(FENGLIN, "WJ002", "devolved", DAY1)], "already starts"),
    ],
)
async def test_bad_decisions_are_rejected_whole(
    client: httpx.AsyncClient, items: list[dict[str, str]], fragment: str
) -> None:
    before = await entries(client)
    response = await post(client, {"document": "青政发〔2026〕99号", "items": items})
    assert response.status_code == 422, response.text
    assert any(fragment in p["message"] for p in response.json()["problems"]), response.text
    assert await entries(client) == before


async def test_only_admins_record_decisions(client: httpx.AsyncClient) -> None:
    body = {"document": "x", "items": [item(FENGLIN, "SC001", "devolved", DAY1)]}
    assert (await post(client, body, headers=DISPATCHER)).status_code == 403
    assert (await post(client, body, headers={})).status_code == 401
    assert (await post(client, {"document": "", "items": []})).status_code == 422
    assert (await client.post("/v1/counties/999999/devolution/changes", json=body, headers=ADMIN)).status_code == 404
