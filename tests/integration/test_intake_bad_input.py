"""Bad input never costs an event (坏输入不丢事件): NUL characters, deep nesting, implausible times and
unbounded extra keys answer 422 naming the field; in a batch only that item is rejected. Personal
numbers typed into free text leave intake masked; the raw record (admin only) keeps them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from services.intake.app import create_app
from shared.embedded import TansuBroker
from tests.helpers import serve
from tests.integration.test_intake import KEYS, events_for, post, record, settings_for

ADMIN = {"Authorization": "Bearer t-admin"}


@pytest.fixture(scope="module")
async def client(database_url: str, kafka: TansuBroker) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(settings_for(database_url, kafka.bootstrap))) as c:
        yield c


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"x": value}
    return value


def with_deep_key(body: dict[str, Any], depth: int) -> bytes:
    """``body`` as JSON with ``"vendor"`` nested ``depth`` levels (spliced: encoders stop far earlier)."""
    deep = b'{"x":' * depth + b'"bottom"' + b"}" * depth
    return orjson.dumps(body)[:-1] + b',"vendor":' + deep + b"}"


def messages(response: httpx.Response) -> str:
    return " ".join(str(e.get("msg")) + " " + ".".join(map(str, e.get("loc", []))) for e in response.json()["detail"])


@pytest.mark.parametrize(
    ("source", "change", "field"),
    [
        ("12345", {"content": "路灯不亮\u0000了"}, "content"),
        ("12345", {"caller": {"name": "张\u0000三", "phone": "13812345678"}}, "caller.name"),
        ("cityops", {"description": "井盖缺失\u0000"}, "description"),
        ("gridworker", {"vendor_note": "abc\u0000"}, "vendor_note"),
        ("12345", {"vendor": {"deep": ["ok", "n\u0000ul"]}}, "vendor.deep[1]"),
    ],
)
async def test_a_nul_character_is_422_naming_the_field(
    client: httpx.AsyncClient, source: str, change: dict[str, Any], field: str
) -> None:
    response = await post(client, source, record(source, **change))
    assert response.status_code == 422, response.text
    assert "NUL" in messages(response) and field in messages(response)


@pytest.mark.parametrize("depth", [20, 254, 600, 1000])
async def test_deeply_nested_json_is_422(client: httpx.AsyncClient, depth: int) -> None:
    response = await client.post(
        "/v1/events/12345",
        content=with_deep_key(record("12345"), depth),
        headers={"X-API-Key": KEYS["12345"], "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text[:300]
    assert "nested deeper" in messages(response) or "unknown key may nest" in messages(response)


async def test_one_deep_item_in_a_batch_rejects_only_itself(client: httpx.AsyncClient) -> None:
    good = [record("cityops") for _ in range(3)]
    events = [
        good[0],
        record("cityops", vendor=nested(600)),
        good[1],
        record("cityops", description="a\u0000"),
        good[2],
    ]
    response = await client.post(
        "/v1/events/cityops/batch", json={"events": events}, headers={"X-API-Key": KEYS["cityops"]}
    )
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted", "rejected", "accepted"]
    assert body["accepted"] == 3 and body["rejected"] == 2
    assert "NUL" in body["results"][3]["errors"][0]["msg"]


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+08:00", "0001-01-01T00:00:00", "1999-12-31T23:59:59+08:00"])
async def test_an_implausibly_early_time_is_422_not_accepted_and_lost(client: httpx.AsyncClient, when: str) -> None:
    for source, field in (("12345", "received_at"), ("cityops", "reported_at"), ("gridworker", "reported_at")):
        response = await post(client, source, record(source, **{field: when}))
        assert response.status_code == 422, response.text
        assert field in messages(response) and "plausible" in messages(response)


async def test_the_earliest_time_is_configurable(database_url: str, kafka: TansuBroker) -> None:
    app = create_app(settings_for(database_url, kafka.bootstrap, earliest_reported_at="2020-01-01T00:00:00+08:00"))
    async with serve(app) as own:
        early = await post(own, "12345", record("12345", received_at="2019-06-01T09:00:00+08:00"))
        assert early.status_code == 422
        fine = await post(own, "12345", record("12345", received_at="2021-06-01T09:00:00+08:00"))
        assert fine.status_code == 202, fine.text


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"blob": "x" * 900_000}, "bytes"),
        ({"big": 2**80}, "2^53"),
        ({"many": [{"k": "v" * 100} for _ in range(200)]}, "bytes"),
        ({"vendor": nested(6)}, "nest"),
    ],
)
async def test_unknown_extra_keys_are_bounded(client: httpx.AsyncClient, extra: dict[str, Any], says: str) -> None:
    response = await post(client, "gridworker", record("gridworker", **extra))
    assert response.status_code == 422, response.text[:300]
    assert says in messages(response)


async def test_small_unknown_extra_keys_are_still_accepted_and_kept_raw(client: httpx.AsyncClient) -> None:
    body = record("gridworker", app_version="3.2.1", device={"os": "android", "build": 42})
    response = await post(client, "gridworker", body)
    assert response.status_code == 202, response.text
    raw = await client.get(f"/v1/events/{response.json()['event_id']}/raw", headers=ADMIN)
    assert raw.json()["raw"]["device"] == {"os": "android", "build": 42}


async def test_phone_and_id_numbers_in_free_text_leave_intake_masked(
    client: httpx.AsyncClient, kafka: TansuBroker
) -> None:
    text = (
        "楼下餐馆油烟扰民，已多次反映。我叫李女士，电话13912345678，也可打+86 138-0013-8000；"
        "身份证号330127198805061234，请尽快处理。门牌号12号，工单号2026120400001。"
    )
    hotline = record(
        "12345", title="油烟扰民 联系15800001111", content=text, address="青溪镇溪口村18号 电话13705711234"
    )
    cityops = record("cityops", description="公众举报：井盖缺失，举报人 18657001234 身份证 33012719900101123X")
    grid = record("gridworker", description="巡查发现占道经营，摊主电话１３５７１２３４５６７")
    ids: list[uuid.UUID] = []
    for source, body in (("12345", hotline), ("cityops", cityops), ("gridworker", grid)):
        response = await post(client, source, body)
        assert response.status_code == 202, response.text
        ids.append(uuid.UUID(response.json()["event_id"]))
    found = await events_for(kafka.bootstrap, set(ids))
    on_kafka = b" ".join(found[i][1].value for i in ids).decode()
    for number in (
        "13912345678",
        "13800138000",
        "0013-8000",
        "330127198805061234",
        "15800001111",
        "18657001234",
        "33012719900101123X",
        "１３５７１２３４５６７",
    ):
        assert number not in on_kafka
    hotline_event = found[ids[0]][0].data
    assert "电话139****5678" in hotline_event.description and "138****8000" in hotline_event.description
    assert "330***********1234" in hotline_event.description
    assert hotline_event.title == "油烟扰民 联系158****1111"
    assert hotline_event.address == "青溪镇溪口村18号 电话137****1234"
    assert "门牌号12号，工单号2026120400001" in hotline_event.description  # other numbers untouched
    assert "330***********123X" in found[ids[1]][0].data.description
    assert "１３５****４５６７" in found[ids[2]][0].data.description
    raw = await client.get(f"/v1/events/{ids[0]}/raw", headers=ADMIN)
    assert raw.status_code == 200
    assert raw.json()["raw"]["content"] == text  # the raw record keeps them (admin only)
    assert "13912345678" not in str(raw.json()["normalised"])


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"caller": {"name": "王女士", "phone": "13812345678", "blob": "x" * 900_000}}, "bytes"),
        ({"attachments": [{"url": "https://img.example/1.jpg", "meta": 2**80}]}, "attachments[0].meta"),
        ({"caller": {"name": "王女士", "memo": {"a": {"b": {"c": {"d": {"e": 1}}}}}}}, "caller.memo"),
    ],
)
async def test_unknown_keys_inside_declared_objects_are_bounded_too(
    client: httpx.AsyncClient, change: dict[str, Any], says: str
) -> None:
    response = await post(client, "12345", record("12345", **change))
    assert response.status_code == 422, response.text[:300]
    assert says in messages(response)
