"""The fault API: each fault does what it says, and only that."""

from __future__ import annotations

from typing import Any

import pytest
from sim_helpers import (
    Message,
    SimServer,
    drain,
    image_workflow,
    is_done,
    new_id,
    poll,
    receive,
    receive_until,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus


def test_faults_start_healthy_and_update_partially(sim: SimServer) -> None:
    healthy = sim.http.get("/sim/faults").json()
    assert healthy == {
        "history_delay_seconds": 0.0,
        "suppress_websocket_messages": False,
        "node_error": None,
        "node_delay_seconds": None,
        "reject_prompts_with_status": None,
    }
    sim.faults(history_delay_seconds=2)
    sim.faults(suppress_websocket_messages=True)
    faults = sim.http.get("/sim/faults").json()
    assert faults["history_delay_seconds"] == 2
    assert faults["suppress_websocket_messages"] is True
    sim.faults(history_delay_seconds=0, suppress_websocket_messages=False)
    assert sim.http.get("/sim/faults").json() == healthy
    bad = sim.http.post("/sim/faults", json={"no_such_fault": 1})
    assert bad.status_code == 422
    bad = sim.http.post("/sim/faults", json={"reject_prompts_with_status": 200})
    assert bad.status_code == 422


def test_history_delay_keeps_history_empty_after_the_completion_signal(sim: SimServer) -> None:
    sim.faults(history_delay_seconds=1.0)
    prompt_id = new_id()
    seen_at_completion: list[dict[str, Any]] = []

    def on_message(message: Message) -> None:
        if is_done(prompt_id)(message):
            seen_at_completion.append(sim.history(prompt_id))

    with sim.websocket("c") as ws:
        receive(ws)
        sim.submit(image_workflow(), client_id="c", prompt_id=prompt_id)
        receive_until(ws, is_done(prompt_id), on_message=on_message)
    assert seen_at_completion == [{}]
    entry = sim.wait_history(prompt_id)
    assert entry["status"]["status_str"] == "success"


def test_drop_websockets_closes_every_socket_once(sim: SimServer) -> None:
    with sim.websocket("a") as a, sim.websocket("b") as b:
        receive(a)
        receive(b)
        result = sim.faults(drop_websockets=True)
        assert result["closed_websockets"] == 2
        for ws in (a, b):
            with pytest.raises(ConnectionClosed):
                receive(ws, timeout=5)
    assert "drop_websockets" not in sim.http.get("/sim/faults").json()
    # One-shot: a new socket works, and a prompt still completes.
    prompt_id = new_id()
    with sim.websocket("a") as again:
        receive(again)
        sim.submit(image_workflow(), client_id="a", prompt_id=prompt_id)
        receive_until(again, is_done(prompt_id))


def test_dropping_sockets_mid_run_loses_messages_but_not_history(sim: SimServer) -> None:
    sim.faults(node_delay_seconds=0.2)
    prompt_id = new_id()
    with sim.websocket("c") as ws:
        receive(ws)
        sim.submit(image_workflow(), client_id="c", prompt_id=prompt_id)
        receive_until(ws, lambda m: m["type"] == "executing")
        sim.faults(drop_websockets=True)
        with pytest.raises(ConnectionClosed):
            receive_until(ws, is_done(prompt_id))
    sim.faults(node_delay_seconds=None)
    assert sim.wait_history(prompt_id)["status"]["status_str"] == "success"


def test_suppressed_messages_leave_an_open_but_silent_socket(sim: SimServer) -> None:
    sim.faults(suppress_websocket_messages=True)
    prompt_id = new_id()
    with sim.websocket("c") as ws:
        assert receive(ws)["type"] == "status"
        sim.submit(image_workflow(), client_id="c", prompt_id=prompt_id)
        assert sim.wait_history(prompt_id)["status"]["status_str"] == "success"
        assert drain(ws) == []
        ws.ping().wait(5)  # still open
        sim.faults(suppress_websocket_messages=False)
        second = new_id()
        sim.submit(image_workflow(seed=2), client_id="c", prompt_id=second)
        receive_until(ws, is_done(second))


def test_node_error_fails_the_run_with_execution_error(sim: SimServer) -> None:
    sim.faults(node_error={"class_type": "ImageAddNoise", "message": "CUDA out of memory"})
    prompt_id = new_id()
    with sim.websocket("c") as ws:
        receive(ws)
        sim.submit(image_workflow(), client_id="c", prompt_id=prompt_id)
        messages = receive_until(ws, is_done(prompt_id))
    kinds = [m["type"] for m in messages]
    assert "execution_error" in kinds
    assert "execution_success" not in kinds
    assert kinds[-3:] == ["execution_error", "status", "executing"]
    error = next(m["data"] for m in messages if m["type"] == "execution_error")
    assert set(error) == {
        "prompt_id",
        "node_id",
        "node_type",
        "executed",
        "exception_message",
        "exception_type",
        "traceback",
        "current_inputs",
        "current_outputs",
        "timestamp",
    }
    assert error["prompt_id"] == prompt_id
    assert error["node_id"] == "2"
    assert error["node_type"] == "ImageAddNoise"
    assert error["executed"] == ["1"]
    assert error["exception_message"].startswith("CUDA out of memory")
    assert error["exception_type"] == "RuntimeError"
    assert isinstance(error["traceback"], list)
    assert error["current_inputs"]["seed"] == [1]
    entry = sim.wait_history(prompt_id)
    assert entry["status"]["status_str"] == "error"
    assert entry["status"]["completed"] is False
    assert entry["status"]["messages"][-1][0] == "execution_error"
    assert entry["outputs"] == {}
    assert not (sim.output_dir / "test").exists()


def test_node_error_that_fires_a_limited_number_of_times(sim: SimServer) -> None:
    sim.faults(node_error={"class_type": "SaveImage", "times": 1})
    failing, passing = new_id(), new_id()
    sim.submit(image_workflow(), prompt_id=failing)
    assert sim.wait_history(failing)["status"]["status_str"] == "error"
    assert sim.http.get("/sim/faults").json()["node_error"] is None
    sim.submit(image_workflow(), prompt_id=passing)
    assert sim.wait_history(passing)["status"]["status_str"] == "success"
    sim.faults(node_error={"class_type": "SaveImage"})
    sim.faults(node_error=None)
    assert sim.http.get("/sim/faults").json()["node_error"] is None


def test_slow_nodes_report_progress(sim: SimServer) -> None:
    sim.faults(node_delay_seconds=0.2)
    prompt_id = new_id()
    with sim.websocket("c") as ws:
        receive(ws)
        sim.submit(image_workflow(), client_id="c", prompt_id=prompt_id)
        messages = receive_until(ws, is_done(prompt_id))
    progress = [m["data"] for m in messages if m["type"] == "progress"]
    assert {p["node"] for p in progress} == {"1", "2", "3"}
    assert all(p["prompt_id"] == prompt_id for p in progress)
    first_node = [p for p in progress if p["node"] == "1"]
    steps = int(first_node[0]["max"])
    assert [p["value"] for p in first_node] == [float(n) for n in range(1, steps + 1)]
    states = [m["data"] for m in messages if m["type"] == "progress_state"]
    assert states[-1]["nodes"]["3"]["state"] == "finished"


def test_restart_wipes_queue_history_and_sockets_and_abandons_the_running_prompt(
    sim: SimServer,
) -> None:
    finished = new_id()
    sim.submit(image_workflow(seed=1), prompt_id=finished)
    sim.wait_history(finished)

    sim.faults(node_delay_seconds=5)
    running, pending = new_id(), new_id()
    with sim.websocket("c") as ws:
        receive(ws)
        sim.submit(image_workflow(seed=2), client_id="c", prompt_id=running)
        sim.submit(image_workflow(seed=3), client_id="c", prompt_id=pending)
        receive_until(ws, lambda m: m["type"] == "progress")
        result = sim.http.post("/sim/restart").json()
        assert result["abandoned"] == running
        assert result["dropped_pending"] == [pending]
        with pytest.raises(ConnectionClosed):
            receive_until(ws, is_done(running))

    assert sim.http.get("/history").json() == {}
    assert sim.http.get("/queue").json() == {"queue_running": [], "queue_pending": []}
    sim.faults(node_delay_seconds=None)
    after = new_id()
    response = sim.submit(image_workflow(seed=4), prompt_id=after)
    assert response.json()["number"] == 0, "numbering starts over after a restart"
    sim.wait_history(after)
    assert sim.history(running) == {}
    assert sim.history(pending) == {}
    assert sim.history(finished) == {}


def test_restart_with_downtime_answers_503_until_back(sim: SimServer) -> None:
    sim.http.post("/sim/restart", json={"downtime_seconds": 2})
    assert sim.http.get("/system_stats").status_code == 503
    assert sim.submit(image_workflow()).status_code == 503
    with pytest.raises(InvalidStatus), sim.websocket("c"):
        pass
    poll(lambda: sim.http.get("/system_stats").status_code == 200, what="the end of downtime")
    with sim.websocket("c") as ws:
        assert receive(ws)["type"] == "status"


def test_rejecting_prompts_with_a_status(sim: SimServer) -> None:
    sim.faults(reject_prompts_with_status=503)
    rejected = new_id()
    response = sim.submit(image_workflow(), client_id="c", prompt_id=rejected)
    assert response.status_code == 503
    assert sim.http.get("/queue").json()["queue_pending"] == []
    sim.faults(reject_prompts_with_status=None)
    accepted = new_id()
    assert sim.submit(image_workflow(), client_id="c", prompt_id=accepted).status_code == 200
    prompts = sim.http.get("/sim/prompts").json()
    assert [(p["prompt_id"], p["client_id"], p["status_code"]) for p in prompts] == [
        (rejected, "c", 503),
        (accepted, "c", 200),
    ]


def test_received_prompts_are_listed_in_order_with_their_client(sim: SimServer) -> None:
    ids = [new_id() for _ in range(3)]
    for index, prompt_id in enumerate(ids):
        sim.submit(image_workflow(seed=index), client_id=f"client-{index}", prompt_id=prompt_id)
    bad = sim.submit({"1": {"class_type": "Nope", "inputs": {}}}, client_id="x", prompt_id="bad")
    assert bad.status_code == 400
    prompts = sim.http.get("/sim/prompts").json()
    assert [p["prompt_id"] for p in prompts] == [*ids, "bad"]
    assert [p["client_id"] for p in prompts] == ["client-0", "client-1", "client-2", "x"]
    assert [p["accepted"] for p in prompts] == [True, True, True, False]
    assert sim.http.delete("/sim/prompts").status_code == 204
    assert sim.http.get("/sim/prompts").json() == []
