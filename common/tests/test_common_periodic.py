"""The guarded periodic-task helper: a crashing round is logged with its cause and the loop
goes on; cancellation, and only cancellation, stops it."""

from __future__ import annotations

import asyncio
import logging

import pytest
from kiln_common.periodic import periodic_task, run_periodically

pytestmark = pytest.mark.anyio

logger = logging.getLogger("kiln.test.periodic")


class Job:
    """Fails its first ``failures`` rounds, then succeeds; counts every round."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.rounds = 0
        self._ran = asyncio.Event()

    async def __call__(self) -> None:
        self.rounds += 1
        self._ran.set()
        if self.rounds <= self.failures:
            raise ValueError(f"malformed answer in round {self.rounds}")

    async def wait_rounds(self, count: int, within_seconds: float = 5) -> None:
        async with asyncio.timeout(within_seconds):
            while self.rounds < count:
                self._ran.clear()
                await self._ran.wait()


async def test_a_crashing_round_is_logged_with_its_cause_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = Job(failures=2)
    with caplog.at_level(logging.ERROR, logger=logger.name):
        task = asyncio.create_task(run_periodically("index sync", 0.001, job, logger))
        await job.wait_rounds(4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    failures = [r for r in caplog.records if r.name == logger.name]
    assert len(failures) == 2
    assert all("index sync failed" in r.getMessage() for r in failures)
    causes = [r.exc_info[1] for r in failures if r.exc_info]
    assert [str(c) for c in causes] == [
        "malformed answer in round 1",
        "malformed answer in round 2",
    ]


async def test_cancellation_stops_the_loop_cleanly_even_mid_round() -> None:
    started = asyncio.Event()
    finished = False

    async def slow_job() -> None:
        nonlocal finished
        started.set()
        await asyncio.Event().wait()  # never set: only cancellation ends this round
        finished = True

    task = asyncio.create_task(run_periodically("slow", 0.001, slow_job, logger))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert finished is False


async def test_the_first_round_runs_at_once_unless_told_to_wait_first() -> None:
    eager, patient = Job(), Job()
    tasks = [
        asyncio.create_task(run_periodically("eager", 3600, eager, logger)),
        asyncio.create_task(run_periodically("patient", 3600, patient, logger, wait_first=True)),
    ]
    await eager.wait_rounds(1)
    for _ in range(10):
        await asyncio.sleep(0)
    assert eager.rounds == 1  # then it waits an hour
    assert patient.rounds == 0  # its first round is an hour away
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_periodic_task_runs_for_the_block_and_is_cancelled_on_exit() -> None:
    job = Job(failures=1)
    async with periodic_task("sweep", 0.001, job, logger) as task:
        await job.wait_rounds(3)
        assert not task.done()  # the failed first round did not end it
    assert task.cancelled()  # so nothing runs after the block


async def test_periodic_task_lets_the_callers_own_cancellation_through() -> None:
    job = Job()
    entered = asyncio.Event()

    async def lifespan() -> None:
        async with periodic_task("sweep", 3600, job, logger):
            entered.set()
            await asyncio.Event().wait()

    outer = asyncio.create_task(lifespan())
    await asyncio.wait_for(entered.wait(), 5)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert outer.cancelled()
