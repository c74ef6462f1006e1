"""Metrics refuses implausible periods and times with 422 (不合理的周期与时间返回 422), never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from services.metrics.app import create_app
from services.metrics.periods import parse_period
from services.metrics.settings import MetricsSettings
from shared.embedded import TansuBroker
from tests.helpers import serve

ADMIN = {"Authorization": "Bearer t-admin"}


@pytest.fixture(scope="module")
async def client(database_url: str, kafka: TansuBroker) -> AsyncIterator[httpx.AsyncClient]:
    settings = MetricsSettings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka.bootstrap,
        staff_tokens=orjson.dumps({"t-admin": {"role": "admin", "township": "*"}}).decode(),
        service_token="t-admin",
        grid_url="http://127.0.0.1:9",
        grid_timeout_s=0.5,
        consume=False,
        log_json=False,
    )
    async with serve(create_app(settings)) as c:
        yield c


@pytest.mark.parametrize(
    "url",
    [
        "/v1/indicators?period=0001",
        "/v1/indicators?period=0001-01",
        "/v1/indicators?period=0001-01-01",
        "/v1/indicators?period=0001-W01",
        "/v1/indicators?period=0001-Q1",
        "/v1/indicators?period=9999-12",
        "/v1/indicators?period=0001-01-01..2026-01-01",
        "/v1/indicators?from=0001-01-01T00:00:00%2B08:00&to=2026-01-01T00:00:00%2B08:00",
        "/v1/indicators?period=2026-11&as_of=0001-01-01T00:00:00%2B08:00",
        "/v1/indicators?period=2026-11&as_of=9999-12-31T23:59:59-23:59",
        "/v1/scores/hotline_three_rates/0001-01",
        "/v1/scores/hotline_three_rates/0001",
        "/v1/scores/hotline_three_rates/0001-01/u1/cases",
        "/v1/ratings/0001-01",
        "/v1/periods/0001-01",
    ],
)
async def test_an_implausible_period_or_time_is_422(client: httpx.AsyncClient, url: str) -> None:
    response = await client.get(url, headers=ADMIN)
    assert response.status_code == 422, (url, response.status_code, response.text[:300])
    assert "detail" in response.json()


async def test_plausible_periods_still_answer(client: httpx.AsyncClient) -> None:
    for url in ("/v1/indicators?period=2026-11", "/v1/scores/hotline_three_rates/2026-11", "/v1/ratings/2000-01"):
        response = await client.get(url, headers=ADMIN)
        assert response.status_code == 200, (url, response.text[:300])


def test_periods_lie_within_2000_to_2099() -> None:
    assert parse_period("2000-01").start.year == 2000 and parse_period("2099-Q4").end.year == 2100
    for bad in ("1999", "1999-12-31", "2100", "0001-01", "1999-12-31T23:00:00+08:00..2026-01-01"):
        with pytest.raises(ValueError, match="outside 2000"):
            parse_period(bad)
