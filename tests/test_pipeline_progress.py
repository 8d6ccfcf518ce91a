"""Progress (issue 3 item 8): ``progress.runs.{id}`` on core NATS with node, value, max and the
share of nodes done, at most ~10 events per second per run."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import httpx
import nats
import pytest
from kiln_contracts.events import RunProgress
from kiln_devstack.stack import Stack
from support.kiln_pipeline_testkit import heal, set_faults
from support.kiln_polling import FINAL

pytestmark = pytest.mark.integration


@pytest.fixture
def sim(simulator: httpx.Client) -> Iterator[httpx.Client]:
    yield simulator
    heal(simulator)


async def _collect(stack: Stack) -> tuple[str, list[RunProgress]]:
    nc = await nats.connect(stack.nats_url)
    events: list[RunProgress] = []
    try:
        sub = await nc.subscribe("progress.runs.*")
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as gateway:
            response = await gateway.post(
                "/api/runs",
                json={"workflow": "noise", "input_text": "", "params": {"width": 16, "height": 16}},
            )
            assert response.status_code == 202, response.text
            run_id: str = response.json()["run_id"]
            async with asyncio.timeout(30):
                while (await gateway.get(f"/api/runs/{run_id}")).json()["status"] not in FINAL:
                    try:
                        message = await sub.next_msg(timeout=0.2)
                    except nats.errors.TimeoutError:
                        continue
                    event = RunProgress.model_validate_json(message.data)
                    if event.run_id == run_id:
                        events.append(event)
        await sub.unsubscribe()
    finally:
        await nc.close()
    return run_id, events


def test_progress_is_published_throttled_with_the_share_of_nodes_done(
    stack: Stack, sim: httpx.Client
) -> None:
    # 0.4 s per node: the simulator reports progress every 0.05 s, 20 per second.
    set_faults(sim, node_delay_seconds=0.4)
    _, events = asyncio.run(_collect(stack))
    assert len(events) >= 6, events
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(events)]
    assert min(gaps) >= 0.099, gaps  # the throttle: at most 10 per second
    shares = [e.share for e in events]
    assert shares == sorted(shares)
    assert shares[0] < shares[-1] <= 1
    assert {e.node for e in events} <= {"1", "2", "3"}
    assert all(0 <= e.value <= e.max for e in events)
