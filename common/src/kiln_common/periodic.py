"""Periodic background jobs (index syncs, retention, TTL sweeps, health checks), all guarded the
same way: a crashing round is logged with its cause and the next round runs on schedule; only
cancellation ends the loop. A job that dies silently would stop doing its work for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


async def run_periodically(
    name: str,
    interval_seconds: float,
    job: Callable[[], Awaitable[object]],
    logger: logging.Logger,
    *,
    wait_first: bool = False,
) -> None:
    """Run ``job`` every ``interval_seconds`` until cancelled (first at once, unless
    ``wait_first``). An exception from one round is logged with its traceback; the loop goes on.
    """
    if wait_first:
        await asyncio.sleep(interval_seconds)
    while True:
        try:
            await job()
        except Exception:
            # Any failure of one round, expected or a bug: log it (with its cause) and keep the
            # schedule. CancelledError is not an Exception, so stopping still works.
            logger.exception("%s failed; next try in %.1f s", name, interval_seconds)
        await asyncio.sleep(interval_seconds)


@asynccontextmanager
async def periodic_task(
    name: str,
    interval_seconds: float,
    job: Callable[[], Awaitable[object]],
    logger: logging.Logger,
    *,
    wait_first: bool = False,
) -> AsyncIterator[asyncio.Task[None]]:
    """``run_periodically`` as a task for the length of the block, cancelled and awaited on
    exit (for an ``AsyncExitStack`` in a service's lifespan)."""
    task = asyncio.create_task(
        run_periodically(name, interval_seconds, job, logger, wait_first=wait_first), name=name
    )
    try:
        yield task
    finally:
        task.cancel()
        # wait() rather than awaiting the task: a cancellation of the caller itself still
        # propagates instead of being taken for the job's own.
        await asyncio.wait([task])
        if not task.cancelled():
            task.result()  # it ended by itself: only a bug can do that; let it be seen
