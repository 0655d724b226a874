"""Waiting for a worker's background refresh to catch up, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(
    condition: Callable[[], bool],
    timeout_s: float = 5.0,
    failure: str = "the worker did not get there in time",
) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(failure)
