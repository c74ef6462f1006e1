"""The background-loop pieces the consumer runner and the outbox relay share 后台循环共用部件:
an exponential back-off between failed rounds, and a graceful stop of a loop's task.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

__all__ = ["Backoff", "stop_task"]


@dataclass(slots=True)
class Backoff:
    """Seconds to wait after a failed round: ``initial``, doubling up to ``maximum``; back to
    ``initial`` after a round that succeeded. 失败后指数退避，成功后复位。"""

    initial: float
    maximum: float
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.current = self.initial

    def reset(self) -> None:
        self.current = self.initial

    def failed(self) -> float:
        """The wait after this failure (the next one waits twice as long, up to the maximum)."""
        wait = self.current
        self.current = min(self.current * 2, self.maximum)
        return wait


async def stop_task(task: asyncio.Task[None] | None, timeout_s: float) -> None:
    """Let ``task`` finish on its own (its loop saw the stop signal) for ``timeout_s``, then cancel it.

    Errors of the task itself are the caller's to log: they are raised here.
    先等待任务自行结束，超时后取消。"""
    if task is None:
        return
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout_s)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
