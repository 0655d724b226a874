"""Helpers for the app's background loops (refreshers, spool replay, archiver)."""

from __future__ import annotations

import asyncio


async def pause(seconds: float) -> None:
    """`asyncio.sleep` for a loop that catches errors: it first honours a cancellation
    that a library swallowed (a cancel landing in redis-py can come out as a timeout
    error, which the loop catches), so shutting the app down never waits forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    await asyncio.sleep(seconds)
