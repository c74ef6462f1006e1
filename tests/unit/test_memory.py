"""Freed heap back to the system (``shared/memory.py``). 归还空闲堆内存。"""

from __future__ import annotations

import platform
import random

import pytest

from shared.memory import resident_bytes, trim_heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_trim_heap_returns_what_a_batch_left_behind() -> None:
    """A batch's worth of malloc-sized objects freed around a few kept ones stays resident until trimmed."""
    rng = random.Random(2026)
    kept: list[bytes] = []
    for _ in range(20):
        batch = [bytes(rng.randint(600, 20_000)) for _ in range(10_000)]
        kept.extend(batch[::50])  # a few survivors pin the heap below its top
        del batch
    before = resident_bytes()
    assert trim_heap()
    after = resident_bytes()
    assert len(kept) == 4_000
    assert before - after > 20 << 20, (before, after)
