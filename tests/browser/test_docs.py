"""API docs in the browser (接口文档): Swagger UI renders from the service itself — no CDN,
nothing fetched from outside the machine — under the services' Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Session
from tests.browser.stack import Platform

NewSession = Callable[..., Awaitable[Session]]


@pytest.mark.parametrize("service", ["intake", "dispatch", "grid", "metrics"])
async def test_swagger_ui_renders_every_operation_offline(
    new_session: NewSession, platform: Platform, service: str
) -> None:
    session = await new_session()
    served = getattr(platform, service)
    await session.page.goto(f"{served.url}/docs")
    await expect(session.page.locator(".swagger-ui .opblock").first).to_be_visible()
    operations = await session.page.locator(".swagger-ui .opblock").count()
    document = (await platform.http.get(f"{served.url}/openapi.json")).json()
    assert operations == sum(len(item) for item in document["paths"].values())
    # foreign requests and CSP violations fail the test when the session closes (conftest)
