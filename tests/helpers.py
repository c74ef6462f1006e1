"""Test helpers: run an app's lifespan and talk to it over real HTTP (ASGI transport)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI


@contextlib.asynccontextmanager
async def serve(app: FastAPI, base_url: str = "http://testserver") -> AsyncIterator[httpx.AsyncClient]:
    """Start the app (lifespan: engines, relay, consumers) and yield an HTTP client bound to it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=30) as client:
            yield client


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout_s: float = 20.0, every_s: float = 0.1) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with the last value after ``timeout_s``."""
    last: Any = None
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every_s)
    raise AssertionError(f"condition not met within {timeout_s}s; last value: {last!r}")


def plan_reads_of(plan: dict[str, Any], relation: str) -> list[dict[str, Any]]:
    """Every node of an ``EXPLAIN (FORMAT JSON)`` plan that reads ``relation``. 计划中读取该表的节点。"""
    found = [plan] if plan.get("Relation Name") == relation else []
    for child in plan.get("Plans", []):
        found += plan_reads_of(child, relation)
    return found
