"""Every known way driving ComfyUI goes wrong (docs/design.md §6, issue 3 item 3), injected into the
simulator, with the documented outcome asserted through the gateway.

A stack of its own: test workflows with a short deadline, and short lost/down limits so a
restart is recognised within seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kiln_devstack.stack import Stack, StackConfig
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
DEADLINE_SECONDS = 2.0
LOST_GRACE_SECONDS = 3.0


def _write_workflow(directory: Path, name: str, params: dict[str, Any], deadline: float) -> None:
    manifest = {
        "name": name,
        "title": {"en": name, "de": name},
        "kind": "image",
        "params": params,
        "seed_targets": [{"node": "2", "input": "seed"}],
        "deadline_seconds": deadline,
    }
    (directory / f"{name}.json").write_text(json.dumps(NOISE_GRAPH))
    (directory / f"{name}.manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workflows = tmp_path_factory.mktemp("fault-workflows")
    _write_workflow(workflows, "test_short_deadline", {}, DEADLINE_SECONDS)
    # The manifest allows more than ComfyUI does (ImageAddNoise strength ≤ 1), so ComfyUI's
    # own validation refuses the graph with node_errors.
    strength = {
        "type": "float",
        "default": 0.5,
        "minimum": 0,
        "maximum": 5,
        "targets": [{"node": "2", "input": "strength"}],
    }
    _write_workflow(workflows, "test_loose_limits", {"strength": strength}, 60)
    env = {
        "KILN_PIPELINE_WORKFLOWS_DIRS": str(workflows),
        "KILN_PIPELINE_LOST_GRACE_SECONDS": str(LOST_GRACE_SECONDS),
        "KILN_PIPELINE_BACKEND_DOWN_SECONDS": "5",
        "KILN_PIPELINE_HEALTH_INTERVAL_SECONDS": "0.5",
    }
    config = StackConfig(var_dir=tmp_path_factory.mktemp("fault-stack"), extra_env=env)
    with Stack(config) as running:
        yield running


@pytest.fixture
def gw(fault_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fault_stack.gateway_url, timeout=10) as client:
        yield client


@pytest.fixture
def sim(fault_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fault_stack.urls["comfyui-sim"], timeout=10) as client:
        yield client
        heal(client)  # each test starts from a healthy simulator


def test_a_silent_websocket_still_completes_through_history(
    gw: httpx.Client, sim: httpx.Client
) -> None:
    set_faults(sim, suppress_websocket_messages=True)
    run_id = start_run(gw)
    record = wait_final(gw, run_id)
    assert record["status"] == "completed", record["error"]
    assert len(submissions(sim, run_id)) == 1


def test_a_dropped_websocket_mid_run_still_completes(gw: httpx.Client, sim: httpx.Client) -> None:
    set_faults(sim, node_delay_seconds=0.7)
    run_id = start_run(gw)
    wait_running(sim, run_id)
    dropped = sim.post("/sim/faults", json={"drop_websockets": True}).json()
    assert dropped["closed_websockets"] >= 1
    record = wait_final(gw, run_id)
    assert record["status"] == "completed", record["error"]
    assert len(submissions(sim, run_id)) == 1


def test_history_written_late_completes_without_a_second_submission(
    gw: httpx.Client, sim: httpx.Client
) -> None:
    # Longer than the poll interval, shorter than the lost grace period.
    set_faults(sim, history_delay_seconds=2.0)
    run_id = start_run(gw)
    record = wait_final(gw, run_id)
    assert record["status"] == "completed", record["error"]
    assert len(submissions(sim, run_id)) == 1


def test_history_late_and_websocket_silent_completes_without_a_second_submission(
    gw: httpx.Client, sim: httpx.Client
) -> None:
    set_faults(sim, history_delay_seconds=1.5, suppress_websocket_messages=True)
    run_id = start_run(gw)
    record = wait_final(gw, run_id)
    assert record["status"] == "completed", record["error"]
    assert len(submissions(sim, run_id)) == 1


def test_a_run_past_its_deadline_times_out_and_is_interrupted(
    gw: httpx.Client, sim: httpx.Client
) -> None:
    set_faults(sim, node_delay_seconds=2.0)  # three nodes: ~6 s, the deadline is 2 s
    run_id = start_run(gw, "test_short_deadline")
    record = wait_final(gw, run_id, timeout=20)
    assert record["status"] == "failed"
    assert record["error"]["code"] == "timeout"
    assert record["error"]["stage"] == "backend"
    assert str(DEADLINE_SECONDS).rstrip("0").rstrip(".") in record["error"]["message"]
    # Interrupted on the simulator: no longer running, and its history says so.
    eventually(lambda: sim.get("/sim/state").json()["running"] != run_id, 5, "interrupt")
    entry = eventually(lambda: sim.get(f"/history/{run_id}").json().get(run_id), 5, "history")
    assert entry["status"]["status_str"] == "error"
    assert "execution_interrupted" in [m[0] for m in entry["status"]["messages"]]


def test_a_queued_run_past_its_deadline_is_removed_from_the_queue(
    gw: httpx.Client, sim: httpx.Client
) -> None:
    set_faults(sim, node_delay_seconds=1.5)  # the first run holds the simulator ~4.5 s
    first = start_run(gw)
    wait_running(sim, first)
    late = start_run(gw, "test_short_deadline")
    eventually(lambda: late in sim.get("/sim/state").json()["pending"], 10, "queued on the sim")
    record = wait_final(gw, late, timeout=20)
    assert record["status"] == "failed"
    assert record["error"]["code"] == "timeout"
    assert late not in sim.get("/sim/state").json()["pending"]
    assert wait_final(gw, first, timeout=30)["status"] == "completed"
    # Dequeued, so it never ran: ComfyUI has no history of it.
    assert sim.get(f"/history/{late}").json() == {}


def test_a_restart_that_loses_the_prompt_resubmits_it_once_under_the_same_id(
    gw: httpx.Client, sim: httpx.Client
) -> None:
    set_faults(sim, node_delay_seconds=0.7)
    run_id = start_run(gw)
    wait_running(sim, run_id)
    assert sim.post("/sim/restart", json={"downtime_seconds": 1.0}).status_code == 200
    record = wait_final(gw, run_id, timeout=40)
    assert record["status"] == "completed", record["error"]
    accepted = [p for p in submissions(sim, run_id) if p["accepted"]]
    assert len(accepted) == 2
    # Stored once, from the second submission.
    assert len([e for e in record["entities"] if e["type"] == "output_image"]) == 1
    # The resubmission is in the run's history (the researcher's view), with backend and why.
    [resubmitted] = [e for e in record["events"] if e["event"] == "resubmitted"]
    assert resubmitted["detail"] == {
        "attempt": 2,
        "backend": "comfyui-0",
        "previous_backend": "comfyui-0",
        "reason": "backend_lost",
    }
    events = [e["event"] for e in record["events"]]
    assert events.index("started") < events.index("resubmitted") < events.index("generated")


def test_a_restart_without_downtime_is_recognised_after_the_grace_period(
    gw: httpx.Client, sim: httpx.Client
) -> None:
    set_faults(sim, node_delay_seconds=0.7, suppress_websocket_messages=True)
    run_id = start_run(gw)
    wait_running(sim, run_id)
    assert sim.post("/sim/restart", json={"downtime_seconds": 0}).status_code == 200
    record = wait_final(gw, run_id, timeout=40)
    assert record["status"] == "completed", record["error"]
    assert len([p for p in submissions(sim, run_id) if p["accepted"]]) == 2


def test_a_prompt_lost_twice_fails_as_backend_lost(gw: httpx.Client, sim: httpx.Client) -> None:
    set_faults(sim, node_delay_seconds=1.0)
    run_id = start_run(gw)
    wait_running(sim, run_id)
    sim.post("/sim/restart", json={"downtime_seconds": 0.5}).raise_for_status()
    eventually(lambda: len(submissions(sim, run_id)) == 2, 20, "the second submission")
    wait_running(sim, run_id)
    sim.post("/sim/restart", json={"downtime_seconds": 0.5}).raise_for_status()
    record = wait_final(gw, run_id, timeout=40)
    assert record["status"] == "failed"
    assert record["error"]["code"] == "backend_lost"
    assert len(submissions(sim, run_id)) == 2
    assert [e["event"] for e in record["events"]].count("resubmitted") == 1


def test_a_node_failing_at_run_time_fails_the_run_with_node_type_and_message(
    gw: httpx.Client, sim: httpx.Client
) -> None:
    set_faults(
        sim,
        node_error={
            "class_type": "ImageAddNoise",
            "message": "the noise ran out",
            "exception_type": "ValueError",
            "times": 1,
        },
    )
    run_id = start_run(gw)
    record = wait_final(gw, run_id)
    assert record["status"] == "failed"
    error = record["error"]
    assert error["code"] == "backend_error"
    assert error["details"]["node_id"] == "2"
    assert error["details"]["node_type"] == "ImageAddNoise"
    assert error["details"]["exception_type"] == "ValueError"
    assert "the noise ran out" in error["message"]
    assert "ImageAddNoise" in error["message"]


def test_node_errors_from_comfyui_fail_the_run_as_invalid_workflow(
    gw: httpx.Client, sim: httpx.Client
) -> None:
    run_id = start_run(gw, "test_loose_limits", strength=3.0)
    record = wait_final(gw, run_id)
    assert record["status"] == "failed"
    assert record["error"]["code"] == "invalid_workflow"
    details = record["error"]["details"]
    node_errors = details["node_errors"]
    assert node_errors["2"]["class_type"] == "ImageAddNoise"
    assert node_errors["2"]["dependent_outputs"]
    # Everything ComfyUI said about each error reaches the record.
    [said] = node_errors["2"]["errors"]
    assert said["type"] == "value_bigger_than_max"
    assert said["message"] == "Value 3.0 bigger than max of 1.0"
    assert said["details"] == "strength"
    assert said["extra_info"]["input_name"] == "strength"
    assert said["extra_info"]["received_value"] == 3.0
    assert details["error"]["type"] == details["error_type"] == "prompt_outputs_failed_validation"
    assert (
        "node 2 (ImageAddNoise): Value 3.0 bigger than max of 1.0: strength"
        in (record["error"]["message"])
    )


def test_parameters_outside_the_manifest_are_refused_before_anything_is_queued(
    gw: httpx.Client, sim: httpx.Client
) -> None:
    before = len(sim.get("/sim/prompts").json())
    for params in ({"width": 99999}, {"strength": "loud"}, {"frames": 3}):
        response = gw.post(
            "/api/runs", json={"workflow": "noise", "input_text": "", "params": params}
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_params"
    assert len(sim.get("/sim/prompts").json()) == before
