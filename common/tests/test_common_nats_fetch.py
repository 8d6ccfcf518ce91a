"""The pull loop of DurableConsumer: an idle fetch that times out is not a failure; a real
fetch failure is logged with its type, so it is never an empty message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import nats.errors
import nats.js.errors
import pytest
from kiln_common.nats import DurableConsumer
from kiln_contracts.events import RunRequested

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class ScriptedSubscription:
    """A pull subscription whose fetch calls raise the given errors in turn, then stop the
    consumer (so the loop ends by itself)."""

    def __init__(self, errors: list[BaseException], stop: Callable[[], None]) -> None:
        self.errors = list(errors)
        self.stop = stop
        self.fetches = 0

    async def fetch(self, batch: int, timeout: float) -> list[Any]:  # noqa: ASYNC109 - nats-py's signature
        self.fetches += 1
        if self.errors:
            raise self.errors.pop(0)
        self.stop()
        return []


async def _never(_: Any) -> None:  # pragma: no cover - no message is ever delivered
    raise AssertionError("no message expected")


async def _never_give_up(_: Any, __: BaseException) -> None:  # pragma: no cover
    raise AssertionError("no give-up expected")


async def run_loop(errors: list[BaseException]) -> ScriptedSubscription:
    consumer = DurableConsumer(
        js=None,  # type: ignore[arg-type]  # the loop only talks to the subscription
        stream="RUNS",
        durable="test-durable",
        handlers={RunRequested: _never},
        on_give_up=_never_give_up,
        concurrency=2,
    )
    subscription = ScriptedSubscription(errors, consumer._stopping.set)
    consumer._sub = subscription  # type: ignore[assignment]
    consumer._slots = asyncio.Semaphore(consumer.concurrency)
    await asyncio.wait_for(consumer._loop(), timeout=10)
    return subscription


async def test_idle_fetch_timeouts_of_every_kind_are_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kiln.nats")
    idle: list[BaseException] = [
        TimeoutError(),  # asyncio.TimeoutError, what nats-py raises between its pull requests
        nats.errors.TimeoutError(),
        nats.js.errors.FetchTimeoutError(),
    ]
    subscription = await run_loop(idle)
    assert subscription.fetches == 4  # every timeout was followed by the next fetch
    assert [r for r in caplog.records if r.name == "kiln.nats"] == []


async def test_a_real_fetch_failure_is_logged_with_its_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="kiln.nats")
    subscription = await run_loop([nats.errors.ConnectionClosedError()])
    assert subscription.fetches == 2
    [record] = [r for r in caplog.records if r.name == "kiln.nats"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("fetch from test-durable failed: ConnectionClosedError")
