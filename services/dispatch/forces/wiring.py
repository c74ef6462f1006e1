"""Wiring 力量调度 into the dispatch app: its routers, its state and its background tasks. 装配。"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, FastAPI

from services.dispatch.context import DispatchContext, utc_now
from services.dispatch.forces import store
from services.dispatch.forces.api import router as forces_router
from services.dispatch.forces.operations_api import router as operations_router
from services.dispatch.forces.positions import TRACK_KEEP
from services.dispatch.forces.push_api import router as push_router
from services.dispatch.forces.push_worker import push_forever
from services.dispatch.forces.service import RosterCache
from shared.logging import get_logger

__all__ = ["PURGE_EVERY_S", "install", "routers", "start"]

log = get_logger(__name__)

#: How often tracks older than 24 h are purged 轨迹清理间隔.
PURGE_EVERY_S = 600.0


def routers() -> list[APIRouter]:
    """The forces routers (added to dispatch's router list). 力量调度路由。"""
    return [forces_router, push_router, operations_router]


def install(app: FastAPI, ctx: DispatchContext) -> None:
    """The app state the forces routes read. 设置应用状态。"""
    app.state.forces_rosters = RosterCache()


def start(ctx: DispatchContext) -> None:
    """Spawn the background tasks (called from dispatch's ``on_start``). 启动后台任务。"""
    ctx.runtime.spawn(_purge_tracks_forever(ctx), "forces-track-purge")
    if ctx.settings.push_poll_s > 0:
        ctx.runtime.spawn(push_forever(ctx), "forces-push")


async def purge_once(ctx: DispatchContext) -> int:
    """Delete the track older than 24 h, a batch per transaction; how many points. 清理一次过期轨迹。"""
    total = 0
    while True:
        async with ctx.runtime.uow() as uow:
            n = await store.purge_tracks(session=uow.session, before=utc_now() - TRACK_KEEP)
        total += n
        if n == 0:
            return total


async def _purge_tracks_forever(ctx: DispatchContext) -> None:
    while True:
        try:
            purged = await purge_once(ctx)
            if purged:
                log.info("old track points purged", count=purged)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("track purge failed", error=repr(exc))
        await asyncio.sleep(PURGE_EVERY_S)
