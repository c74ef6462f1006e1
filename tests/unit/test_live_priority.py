"""The live-before-bulk gate (shared.messaging.priority): pure asyncio, no broker. 实时优先闸门。"""

from __future__ import annotations

import asyncio

from shared.messaging.priority import LivePriority


async def test_a_bulk_batch_starts_at_once_when_no_live_batch_is_in_hand() -> None:
    priority = LivePriority()
    await asyncio.wait_for(priority.before_bulk_batch(), 1)
    assert (priority.live_in_hand, priority.bulk_waits) == (0, 0)


async def test_a_bulk_batch_waits_for_every_live_batch_in_hand() -> None:
    priority = LivePriority()
    first, second = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def live(done: asyncio.Event, name: str) -> None:
        async with priority.live_batch():
            await done.wait()
            order.append(name)

    async def bulk() -> None:
        await priority.before_bulk_batch()
        order.append("bulk")

    tasks = [asyncio.create_task(live(first, "live-1")), asyncio.create_task(live(second, "live-2"))]
    await asyncio.sleep(0)  # both live batches enter
    assert priority.live_in_hand == 2
    waiting = asyncio.create_task(bulk())
    await asyncio.sleep(0)
    first.set()
    await tasks[0]
    await asyncio.sleep(0)
    assert order == ["live-1"] and not waiting.done()  # one live batch still in hand
    second.set()
    await asyncio.gather(tasks[1], waiting)
    assert order == ["live-1", "live-2", "bulk"]
    assert (priority.live_in_hand, priority.bulk_waits) == (0, 1)


async def test_a_failing_live_batch_still_lets_bulk_go() -> None:
    priority = LivePriority()

    async def failing() -> None:
        async with priority.live_batch():
            raise RuntimeError("the batch failed")

    try:
        await failing()
    except RuntimeError:
        pass
    assert priority.live_in_hand == 0
    await asyncio.wait_for(priority.before_bulk_batch(), 1)
