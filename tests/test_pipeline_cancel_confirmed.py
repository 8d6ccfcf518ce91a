"""Cancel and deadline confirmed by the backend (issue 15 items 2-4), against the simulator,
which honours an interrupt only between nodes as ComfyUI 0.3.64 does.

A stack of its own: one slot for the one backend (so a slot taken by a run being stopped is
visible as a run that is not submitted), test workflows that keep late outputs or whose
deadline falls into their last node.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kiln_devstack.stack import Stack, StackConfig
from support.kiln_gateway_helpers import (
    RESEARCHER,
    SseEvent,
    SseRead,
    gateway_replica,
    read_sse,
)
from support.kiln_pipeline_testkit import heal, set_faults, start_run, submissions, wait_running
from support.kiln_polling import eventually, wait_final

pytestmark = pytest.mark.integration

NOISE_GRAPH = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 0},
    },
    "2": {"class_type": "ImageAddNoise", "inputs": {"image": ["1", 0], "seed": 0, "strength": 0.5}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "kiln"}},
}
LAST_NODE = "3"
NODE_SECONDS = 2.0
# Three nodes of 2 s: the last one runs from 4 s to 6 s after the prompt starts.
LAST_NODE_DEADLINE_SECONDS = 5.0


def _write_workflow(directory: Path, name: str, **manifest_fields: Any) -> None:
    manifest = {
        "name": name,
        "title": {"en": name, "de": name},
        "kind": "image",
        "seed_targets": [{"node": "2", "input": "seed"}],
        **manifest_fields,
    }
    (directory / f"{name}.json").write_text(json.dumps(NOISE_GRAPH))
    (directory / f"{name}.manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def cancel_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workflows = tmp_path_factory.mktemp("cancel-workflows")
    _write_workflow(workflows, "test_keep_late", late_outputs="keep")
    # Its first node takes a colour, so no run of it starts from ComfyUI's cache (which keeps
    # the previous prompt's node results): all three nodes run, and the deadline falls into
    # the last one.
    color = {
        "type": "int",
        "default": 0,
        "minimum": 0,
        "maximum": 16777215,
        "targets": [{"node": "1", "input": "color"}],
    }
    _write_workflow(
        workflows,
        "test_last_node_deadline",
        deadline_seconds=LAST_NODE_DEADLINE_SECONDS,
        params={"color": color},
    )
    env = {
        "KILN_PIPELINE_WORKFLOWS_DIRS": str(workflows),
        "KILN_PIPELINE_MAX_IN_FLIGHT_PER_BACKEND": "1",
        "KILN_PIPELINE_LOST_GRACE_SECONDS": "2",
        "KILN_PIPELINE_BACKEND_DOWN_SECONDS": "5",
        "KILN_PIPELINE_HEALTH_INTERVAL_SECONDS": "0.5",
    }
    config = StackConfig(var_dir=tmp_path_factory.mktemp("cancel-stack"), extra_env=env)
    with Stack(config) as running:
        yield running


@pytest.fixture
def gw(cancel_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cancel_stack.gateway_url, timeout=10) as client:
        yield client


@pytest.fixture
def sim(cancel_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cancel_stack.urls["comfyui-sim"], timeout=10) as client:
        yield client
        heal(client)


class CancelInLastNode:
    """Follows a run's event stream in a thread; cancels it once the last node is running."""

    def __init__(self, gateway: httpx.Client, run_id: str) -> None:
        self.run_id = run_id
        self.gateway_url = str(gateway.base_url)
        self.cookies = httpx.Cookies(gateway.cookies)  # the same device: its runs are its own
        self.cancelling = threading.Event()
        self.read: SseRead | None = None
        self.cancel_status: int | None = None
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _on_event(self, event: SseEvent) -> None:
        data = event.json()
        if event.event == "progress" and data["node"] == LAST_NODE and self.cancel_status is None:
            with httpx.Client(
                base_url=self.gateway_url, cookies=self.cookies, timeout=10
            ) as client:
                self.cancel_status = client.post(f"/api/runs/{self.run_id}/cancel").status_code
        if event.event == "state" and data["event"] == "cancelling":
            self.cancelling.set()

    def _follow(self) -> None:
        with httpx.Client(base_url=self.gateway_url, cookies=self.cookies, timeout=10) as client:
            self.read = read_sse(
                client, f"/api/runs/{self.run_id}/events", timeout=60, on_event=self._on_event
            )

    def join(self) -> SseRead:
        self._thread.join(60)
        assert self.read is not None, "the event stream did not end"
        return self.read


def _outputs(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in record["entities"] if e["type"].startswith("output_")]


def _sim_history(sim: httpx.Client, run_id: str) -> dict[str, Any]:
    entry: dict[str, Any] = eventually(
        lambda: sim.get(f"/history/{run_id}").json().get(run_id), 10, "history"
    )
    return entry


def test_a_cancel_in_the_last_node_ends_as_comfyui_ended_it_and_holds_the_slot(
    gw: httpx.Client, sim: httpx.Client, cancel_stack: Stack
) -> None:
    set_faults(sim, node_delay_seconds=NODE_SECONDS)
    first = start_run(gw)
    follower = CancelInLastNode(gw, first)
    assert follower.cancelling.wait(30), "no cancelling event on the stream"
    assert follower.cancel_status == 202
    # The backend is still running the last node: its one slot stays taken, so a second run
    # is not submitted until the simulator has finished the first.
    second = start_run(gw)
    eventually(
        lambda: gw.get(f"/api/runs/{first}").json()["events"][-1]["event"] == "cancelling",
        10,
        "cancelling in the record",
    )
    while True:
        # Read first, then check the simulator was still busy with the first run afterwards:
        # what was read was read while the backend was busy.
        submitted = submissions(sim, second)
        record = gw.get(f"/api/runs/{first}").json()
        if sim.get("/sim/state").json()["running"] != first:
            break
        assert submitted == [], "the slot was reused while the backend was busy"
        assert record["status"] == "running"
        assert record["events"][-1]["event"] == "cancelling"
    read = follower.join()
    # ComfyUI completed the prompt: the record says so, and keeps no output.
    assert _sim_history(sim, first)["status"]["status_str"] == "success"
    record = wait_final(gw, first)
    assert record["status"] == "cancelled"
    assert [e["event"] for e in record["events"]][-2:] == ["cancelling", "cancelled"]
    detail = record["events"][-1]["detail"]
    assert detail["backend_outcome"] == "completed"
    assert detail["backend"] == "comfyui-0"
    assert _outputs(record) == []
    states = [e.json() for e in read.events if e.event == "state"]
    assert [s["event"] for s in states][-2:] == ["cancelling", "cancelled"]
    assert states[-2]["status"] == "running"
    assert states[-2]["detail"]["reason"] == "cancel"
    assert wait_final(gw, second)["status"] == "completed"


def test_a_cancel_between_nodes_is_confirmed_as_interrupted(
    gw: httpx.Client, sim: httpx.Client
) -> None:
    set_faults(sim, node_delay_seconds=NODE_SECONDS)
    run_id = start_run(gw)
    wait_running(sim, run_id)
    assert gw.post(f"/api/runs/{run_id}/cancel").status_code == 202
    record = wait_final(gw, run_id)
    assert record["status"] == "cancelled"
    assert record["events"][-1]["detail"]["backend_outcome"] == "interrupted"
    messages = [m[0] for m in _sim_history(sim, run_id)["status"]["messages"]]
    assert "execution_interrupted" in messages


def test_a_workflow_keeping_late_outputs_completes_with_the_late_cancel_recorded(
    gw: httpx.Client, sim: httpx.Client, cancel_stack: Stack
) -> None:
    set_faults(sim, node_delay_seconds=NODE_SECONDS)
    run_id = start_run(gw, "test_keep_late")
    follower = CancelInLastNode(gw, run_id)
    follower.join()
    assert follower.cancel_status == 202
    record = wait_final(gw, run_id)
    assert record["status"] == "completed", record["error"]
    assert len(_outputs(record)) == 1
    events = [e["event"] for e in record["events"]]
    assert events.index("cancelling") < events.index("generated") < events.index("stored")
    generated = next(e for e in record["events"] if e["event"] == "generated")
    assert generated["detail"]["late_stop"]["reason"] == "cancel"


def test_a_deadline_in_the_last_node_fails_timeout_saying_comfyui_completed_it(
    gw: httpx.Client, sim: httpx.Client
) -> None:
    set_faults(sim, node_delay_seconds=NODE_SECONDS)
    run_id = start_run(gw, "test_last_node_deadline", color=secrets.randbelow(2**24))
    record = wait_final(gw, run_id, timeout=30)
    assert record["status"] == "failed"
    assert record["error"]["code"] == "timeout"
    assert record["error"]["details"]["backend_outcome"] == "completed"
    assert "completed it after the deadline" in record["error"]["message"]
    assert "cancelling" in [e["event"] for e in record["events"]]
    assert _outputs(record) == []
    assert _sim_history(sim, run_id)["status"]["status_str"] == "success"


def test_a_cancel_of_a_run_waiting_in_the_backlog_is_final_at_once(
    gw: httpx.Client, sim: httpx.Client
) -> None:
    set_faults(sim, node_delay_seconds=NODE_SECONDS)
    busy = start_run(gw)
    wait_running(sim, busy)
    waiting = start_run(gw)  # the one slot is taken: it waits in the backlog
    answer = gw.post(f"/api/runs/{waiting}/cancel")
    assert answer.status_code == 202
    assert answer.json()["status"] == "cancelled"
    # The goal is one second; the poll's deadline is generous (bench/cancel.py measures it).
    record = wait_final(gw, waiting, timeout=3)
    assert record["status"] == "cancelled"
    assert record["events"][-1]["detail"]["backend_outcome"] == "never_submitted"
    assert [e["event"] for e in record["events"]].count("cancelled") == 1
    assert gw.get(f"/api/runs/{busy}").json()["status"] == "running"  # no slot was needed
    assert wait_final(gw, busy)["status"] == "completed"
    # The pipeline then takes the request (before a later one: one slot, in order), finds the
    # cancel's claim and submits nothing; the record keeps its one final state.
    set_faults(sim, node_delay_seconds=None)
    assert wait_final(gw, start_run(gw))["status"] == "completed"
    assert submissions(sim, waiting) == []
    assert wait_final(gw, waiting)["events"] == record["events"]


def test_backlog_cancels_racing_two_gateways_and_the_pipeline_end_in_one_true_final_state(
    gw: httpx.Client, sim: httpx.Client, cancel_stack: Stack
) -> None:
    # Quick runs through one slot, each cancelled through two gateway replicas at once while
    # the pipeline is taking them: whoever claims a run first decides, and the record tells
    # the truth about what reached the backend.
    with (
        gateway_replica(cancel_stack, "gateway-2") as second_url,
        httpx.Client(base_url=second_url, timeout=10, headers=RESEARCHER) as gw2,
    ):
        set_faults(sim, node_delay_seconds=0.1)  # ~0.3 s a run: some run, most wait
        runs = [start_run(gw) for _ in range(12)]
        answers: list[int] = []

        def cancel(client: httpx.Client, run_id: str) -> None:
            answer = client.post(f"/api/runs/{run_id}/cancel", headers=RESEARCHER)
            answers.append(answer.status_code)

        threads = [
            threading.Thread(target=cancel, args=(client, run_id))
            for run_id in runs
            for client in (gw, gw2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert set(answers) <= {202, 409}, answers
    for run_id in runs:
        record = wait_final(gw, run_id)
        finals = [e for e in record["events"] if e["event"] in ("stored", "failed", "cancelled")]
        assert len(finals) == 1, record["events"]
        submitted = [p for p in submissions(sim, run_id) if p["accepted"]]
        if record["status"] == "cancelled":
            outcome = finals[0]["detail"]["backend_outcome"]
            assert (outcome == "never_submitted") == (not submitted), (outcome, submitted)
        else:
            assert record["status"] == "completed", record["error"]
            assert len(submitted) == 1
