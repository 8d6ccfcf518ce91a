"""Cancel (issue 3 item 6): ``POST /api/runs/{id}/cancel`` → ``runs.{id}.cancel`` → interrupt or
dequeue at ComfyUI → ``cancelled``, wherever the run is at that moment."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from support.kiln_pipeline_testkit import heal, set_faults, start_run, submissions, wait_running
from support.kiln_polling import eventually, wait_final

pytestmark = pytest.mark.integration


@pytest.fixture
def sim(simulator: httpx.Client) -> Iterator[httpx.Client]:
    yield simulator
    heal(simulator)


def _cancel(gateway: httpx.Client, run_id: str) -> None:
    response = gateway.post(f"/api/runs/{run_id}/cancel")
    assert response.status_code == 202, response.text


def test_cancelling_a_running_run_interrupts_it(gateway: httpx.Client, sim: httpx.Client) -> None:
    set_faults(sim, node_delay_seconds=1.5)
    run_id = start_run(gateway)
    wait_running(sim, run_id)
    _cancel(gateway, run_id)
    record = wait_final(gateway, run_id)
    assert record["status"] == "cancelled"
    assert record["events"][-1]["event"] == "cancelled"
    assert not [e for e in record["entities"] if e["type"].startswith("output_")]
    entry = eventually(lambda: sim.get(f"/history/{run_id}").json().get(run_id), 5, "history")
    assert "execution_interrupted" in [m[0] for m in entry["status"]["messages"]]
    assert [e["event"] for e in record["events"]][-2:] == ["cancelling", "cancelled"]
    assert record["events"][-1]["detail"]["backend_outcome"] == "interrupted"
    # Final states never change: a second cancel is refused.
    assert gateway.post(f"/api/runs/{run_id}/cancel").status_code == 409


def test_cancelling_a_run_queued_in_comfyui_dequeues_it(
    gateway: httpx.Client, sim: httpx.Client
) -> None:
    set_faults(sim, node_delay_seconds=1.0)
    first = start_run(gateway)
    wait_running(sim, first)
    second = start_run(gateway)
    eventually(lambda: second in sim.get("/sim/state").json()["pending"], 10, "queued on sim")
    _cancel(gateway, second)
    record = wait_final(gateway, second)
    assert record["status"] == "cancelled"
    assert record["events"][-1]["detail"]["backend_outcome"] == "dequeued"
    assert second not in sim.get("/sim/state").json()["pending"]
    assert wait_final(gateway, first)["status"] == "completed"
    assert sim.get(f"/history/{second}").json() == {}  # it never ran


def test_cancelling_a_run_still_waiting_in_jetstream_never_submits_it(
    gateway: httpx.Client, sim: httpx.Client
) -> None:
    # Four runs fill the pipeline's slots for the one backend (KILN default 4 in flight), so
    # the fifth waits in JetStream: its cancel is final at once (the gateway claims the run
    # before any pipeline does), and the pipeline finds the claim on pickup.
    set_faults(sim, node_delay_seconds=0.5)
    busy = [start_run(gateway) for _ in range(4)]
    wait_running(sim, busy[0])
    waiting = start_run(gateway)
    _cancel(gateway, waiting)
    # The goal is one second; the poll's deadline is generous (bench/cancel.py measures it).
    record = wait_final(gateway, waiting, timeout=3)
    assert record["status"] == "cancelled"
    assert record["events"][-1]["detail"]["backend_outcome"] == "never_submitted"
    assert submissions(sim, waiting) == []
    for run_id in busy:
        assert wait_final(gateway, run_id, timeout=40)["status"] == "completed"
