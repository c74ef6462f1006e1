"""Fixtures of the browser tests: the platform on free ports and Debian's Chromium driven by Playwright.

浏览器测试夹具：在空闲端口上运行的平台，以及由 Playwright 驱动的 Debian Chromium。

Chromium is ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it). Without it
the browser tests fail with a clear message when ``CI=true`` and are skipped (with the reason)
elsewhere. Screenshots go to ``test-artifacts/browser/``; with ``UPDATE_DOC_SCREENSHOTS=1`` the
main views are also written to ``docs/screenshots/`` (to refresh the committed ones).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright, expect

from shared.embedded import TansuBroker
from tests.browser.stack import Platform, running_platform
from tests.conftest import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
DOC_SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}

expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium, or fail (CI) / skip (elsewhere) saying how to get it."""
    if CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = f"{CHROMIUM} not found: install Debian's Chromium (apt-get install chromium) to run the browser tests"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
async def platform(postgres_server_url: str) -> AsyncIterator[Platform]:
    """Intake, grid (demo county), metrics and dispatch with the dashboard, on a fresh database and a
    broker of their own (so no other test's events reach these services). 独立数据库与独立代理。"""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    broker = TansuBroker(log_path=ARTIFACTS / "tansu-browser.log")
    await asyncio.to_thread(broker.start)
    url = await create_database(postgres_server_url)
    try:
        async with running_platform(url, broker.bootstrap) as running:
            yield running
    finally:
        await drop_database(postgres_server_url, url)
        await asyncio.to_thread(broker.stop)


@pytest.fixture(scope="module")
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Session:
    """One browser context (one person at one screen) and what it asked for. 一个浏览器会话。"""

    context: BrowserContext
    page: Page
    platform: Platform
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def foreign_requests(self) -> list[str]:
        """Requests that left the machine (CDNs, fonts, tiles …): there must be none. 外部请求。"""
        return [
            u for u in self.requests if urlsplit(u).scheme in ("http", "https") and urlsplit(u).hostname != "127.0.0.1"
        ]

    async def open(self, fragment: str = "") -> None:
        await self.page.goto(self.platform.dashboard_url + fragment)

    async def sign_in(self, token: str) -> None:
        """Sign in on the login form and wait for the live stream. 登录并等待事件流连通。"""
        await expect(self.page.locator("form[data-form=login]")).to_be_visible()
        await self.page.fill("#token", token)
        await self.page.click("form[data-form=login] button[type=submit]")
        await expect(self.page.locator("#topbar")).to_be_visible()
        await expect(self.page.locator("#live")).to_have_attribute("data-state", "live")

    async def mark(self) -> None:
        """Put a marker in the page's window: it survives only if the page is never reloaded. 防刷新标记。"""
        await self.page.evaluate("window.__noReload = 'still-here'")

    async def not_reloaded(self) -> bool:
        return bool(await self.page.evaluate("window.__noReload === 'still-here'"))

    async def shot(self, name: str, *, doc: bool = False) -> Path:
        """Screenshot to test-artifacts/browser/; also to docs/screenshots/ when refreshing them. 截图。"""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path))
        if doc and os.environ.get("UPDATE_DOC_SCREENSHOTS") == "1":
            DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await self.page.screenshot(path=str(DOC_SCREENSHOTS / f"{name}.png"))
        return path


@pytest.fixture
async def new_session(browser: Browser, platform: Platform) -> AsyncIterator[Callable[..., Awaitable[Session]]]:
    """Factory of browser sessions at 1366×768, Beijing time, Chinese locale; all closed after the test."""
    sessions: list[Session] = []

    async def make(**context_options: Any) -> Session:
        context = await browser.new_context(
            viewport=VIEWPORT,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            accept_downloads=True,
            **context_options,
        )
        page = await context.new_page()
        session = Session(context=context, page=page, platform=platform)
        context.on("request", lambda request: session.requests.append(request.url))
        page.on("pageerror", lambda exc: session.errors.append(str(exc)))
        # The page runs under the service's Content-Security-Policy: any violation (an inline style or
        # script, a foreign source) shows in the console and fails the test. 违反 CSP 即失败。
        page.on(
            "console",
            lambda msg: (
                session.errors.append(msg.text)
                if msg.type == "error" and "Content Security Policy" in msg.text
                else None
            ),
        )
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        await session.context.close()
    for session in sessions:
        assert not session.foreign_requests, f"the page fetched from outside the machine: {session.foreign_requests}"
        assert not session.errors, f"JavaScript errors: {session.errors}"


MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
