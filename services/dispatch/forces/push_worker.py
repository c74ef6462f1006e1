"""The push worker 推送任务: fan out queued transitions, then send the due deliveries, signed, outside any
transaction; each attempt's outcome recorded in its own transaction (see :mod:`.push`). 推送后台任务。"""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson

from services.dispatch.context import DispatchContext, utc_now
from services.dispatch.forces import push
from services.dispatch.forces.signing import signature_headers
from shared.logging import get_logger

__all__ = ["push_forever", "push_once"]

log = get_logger(__name__)


async def _send(client: httpx.AsyncClient, due: push.Due) -> tuple[bool, str | None]:
    body = orjson.dumps({"delivery_id": due.id, **due.payload})
    headers = signature_headers(due.secret, int(time.time()), body, delivery_id=due.id, event=due.event_type)
    try:
        response = await client.post(due.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return True, None
    return False, f"HTTP {response.status_code}"


async def push_once(ctx: DispatchContext, client: httpx.AsyncClient) -> int:
    """One pass: fan out the whole queue, then send one batch of due deliveries; how many were sent. 推送一轮。"""
    settings = ctx.settings
    while True:
        async with ctx.runtime.uow() as uow:
            if await push.fan_out(session=uow.session) == 0:
                break
    async with ctx.runtime.uow() as uow:
        # The lease outlasts one attempt (the request's timeout) by a margin. 租约长于一次请求超时。
        claimed = await push.claim_due(session=uow.session, now=utc_now(), lease_s=settings.push_timeout_s + 5)
    if not claimed:
        return 0
    outcomes = await asyncio.gather(*(_send(client, d) for d in claimed))
    async with ctx.runtime.uow() as uow:
        for due, (ok, error) in zip(claimed, outcomes, strict=True):
            status = await push.record_attempt(
                session=uow.session,
                delivery_id=due.id,
                ok=ok,
                error=error,
                now=utc_now(),
                max_attempts=settings.push_max_attempts,
                backoff_s=settings.push_backoff_s,
            )
            if status == "dead":
                log.warning("push delivery dead-lettered", delivery=due.id, url=due.url, error=error)
    return len(claimed)


async def push_forever(ctx: DispatchContext) -> None:
    """Every ``push_poll_s``: a pass (repeated at once while it had work). 持续推送。"""
    async with httpx.AsyncClient(timeout=ctx.settings.push_timeout_s) as client:
        while True:
            try:
                sent = await push_once(ctx, client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("push pass failed", error=repr(exc))
                sent = 0
            if not sent:
                await asyncio.sleep(ctx.settings.push_poll_s)
