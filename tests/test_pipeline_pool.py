"""A pool of ComfyUI backends (issue 3 item 7): health, shortest queue, out of rotation on
failure, a bound per backend, and each backend's state at ``GET /api/system``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kiln_devstack.stack import Stack, StackConfig
from support.kiln_pipeline_testkit import heal, set_faults, start_run, submissions
from support.kiln_polling import eventually, wait_final

pytestmark = pytest.mark.integration

MAX_IN_FLIGHT = 2
SLOW_GRAPH = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 0},
    },
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "other"}},
}


@pytest.fixture(scope="module")
def pool_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "KILN_PIPELINE_MAX_IN_FLIGHT_PER_BACKEND": str(MAX_IN_FLIGHT),
        "KILN_PIPELINE_HEALTH_INTERVAL_SECONDS": "0.3",
        "KILN_PIPELINE_BACKEND_DOWN_SECONDS": "2",
    }
    stack = Stack(StackConfig(var_dir=tmp_path_factory.mktemp("pool-stack"), extra_env=env))
    try:
        urls = [stack.start_simulator("sim-a"), stack.start_simulator("sim-b")]
        stack.config.comfyui_urls = urls
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def gw(pool_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pool_stack.gateway_url, timeout=10) as client:
        yield client


@pytest.fixture
def sims(pool_stack: Stack) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with (
        httpx.Client(base_url=pool_stack.urls["sim-a"], timeout=10) as a,
        httpx.Client(base_url=pool_stack.urls["sim-b"], timeout=10) as b,
    ):
        yield a, b
        for sim in (a, b):
            heal(sim)


def _backends(gw: httpx.Client) -> dict[str, dict[str, Any]]:
    services = gw.get("/api/system").json()["services"]
    pipeline = next(s for s in services if s["service"] == "pipeline-service")
    return {b["name"]: b for b in pipeline["details"]["backends"]}


def test_system_shows_each_backend_with_health_and_queue(
    gw: httpx.Client, pool_stack: Stack
) -> None:
    backends = _backends(gw)
    assert set(backends) == {"comfyui-0", "comfyui-1"}
    assert backends["comfyui-0"]["url"] == pool_stack.urls["sim-a"]
    for backend in backends.values():
        assert backend["healthy"] is True
        assert backend["queue_remaining"] == 0
        assert backend["max_in_flight"] == MAX_IN_FLIGHT
        assert backend["websocket"] == "connected"


def test_runs_spread_over_the_pool_and_never_exceed_the_bound_per_backend(
    gw: httpx.Client, sims: tuple[httpx.Client, httpx.Client]
) -> None:
    for sim in sims:
        set_faults(sim, node_delay_seconds=0.2)
    highest = {0: 0, 1: 0}
    stop = threading.Event()

    def watch() -> None:
        # Sample each simulator's queue (running + pending) while the runs are in flight.
        while not stop.is_set():
            for index, sim in enumerate(sims):
                state = sim.get("/sim/state").json()
                depth = len(state["pending"]) + (1 if state["running"] else 0)
                highest[index] = max(highest[index], depth)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        runs = [start_run(gw) for _ in range(8)]
        records = [wait_final(gw, run_id, timeout=60) for run_id in runs]
    finally:
        stop.set()
        watcher.join()
    assert [r["status"] for r in records] == ["completed"] * 8
    on_a = [r for r in runs if submissions(sims[0], r)]
    on_b = [r for r in runs if submissions(sims[1], r)]
    assert len(on_a) + len(on_b) == 8
    assert on_a
    assert on_b
    # The backlog waited in JetStream, not inside ComfyUI.
    assert 1 <= highest[0] <= MAX_IN_FLIGHT, highest
    assert 1 <= highest[1] <= MAX_IN_FLIGHT, highest


def test_a_run_goes_to_the_backend_with_the_shorter_queue(
    gw: httpx.Client, sims: tuple[httpx.Client, httpx.Client]
) -> None:
    sim_a, sim_b = sims
    set_faults(sim_a, node_delay_seconds=1.0)
    # Another client fills sim-a's queue; kiln must see it and prefer sim-b.
    for seed in range(3):
        graph = {**SLOW_GRAPH, "1": {**SLOW_GRAPH["1"], "inputs": {**SLOW_GRAPH["1"]["inputs"]}}}
        graph["1"]["inputs"]["color"] = seed
        sim_a.post("/prompt", json={"prompt": graph, "client_id": "not-kiln"}).raise_for_status()
    eventually(lambda: _backends(gw)["comfyui-0"]["queue_remaining"] >= 2, 10, "queue seen")
    run_id = start_run(gw)
    assert wait_final(gw, run_id)["status"] == "completed"
    assert submissions(sim_b, run_id)
    assert not submissions(sim_a, run_id)
    sim_a.post("/queue", json={"clear": True}).raise_for_status()


def test_a_backend_refusing_prompts_is_routed_around(
    gw: httpx.Client, sims: tuple[httpx.Client, httpx.Client]
) -> None:
    sim_a, sim_b = sims
    set_faults(sim_a, reject_prompts_with_status=503)
    runs = [start_run(gw) for _ in range(3)]
    for run_id in runs:
        record = wait_final(gw, run_id, timeout=30)
        assert record["status"] == "completed", record["error"]
        assert [p["accepted"] for p in submissions(sim_b, run_id)] == [True]
        # A run refused by comfyui-0 first moved to comfyui-1: an event says so.
        moves = [e["detail"] for e in record["events"] if e["event"] == "resubmitted"]
        if submissions(sim_a, run_id):
            assert moves == [
                {
                    "attempt": 2,
                    "backend": "comfyui-1",
                    "previous_backend": "comfyui-0",
                    "reason": "backend_unavailable",
                }
            ]
        else:
            assert moves == []
    # At most one attempt per run reached the refusing backend.
    assert all(len(submissions(sim_a, r)) <= 1 for r in runs)


def test_a_backend_that_stops_answering_leaves_rotation_and_its_run_moves_once(
    gw: httpx.Client, sims: tuple[httpx.Client, httpx.Client], pool_stack: Stack
) -> None:
    names = [("sim-a", "comfyui-0"), ("sim-b", "comfyui-1")]
    for sim in sims:
        set_faults(sim, node_delay_seconds=2.0)
    run_id = start_run(gw)
    # Both idle: either may get it (a health check in flight can tip the tie), so find it.
    [victim] = eventually(
        lambda: [
            i for i, sim in enumerate(sims) if sim.get("/sim/state").json()["running"] == run_id
        ],
        15,
        "the run on a simulator",
    )
    survivor = 1 - victim
    set_faults(sims[survivor], node_delay_seconds=None)
    (victim_process, victim_backend), _ = names[victim], names[survivor]
    pool_stack.processes[victim_process].kill()
    record = wait_final(gw, run_id, timeout=40)
    assert record["status"] == "completed", record["error"]
    assert [p["accepted"] for p in submissions(sims[survivor], run_id)] == [True]
    # The move is a run event (the researcher's history), naming both backends and why.
    survivor_backend = names[survivor][1]
    [moved] = [e for e in record["events"] if e["event"] == "resubmitted"]
    assert moved["detail"]["backend"] == survivor_backend
    assert moved["detail"]["previous_backend"] == victim_backend
    assert moved["detail"]["reason"] in ("backend_lost", "backend_unavailable")
    assert record["backend"] == survivor_backend
    dead = _backends(gw)[victim_backend]
    assert dead["healthy"] is False
    assert dead["last_error"]
    # New runs go to the healthy backend meanwhile.
    other = start_run(gw)
    assert wait_final(gw, other)["status"] == "completed"
    assert submissions(sims[survivor], other)
    # Back on the same port, the dead backend returns to rotation.
    pool_stack.start_simulator(victim_process)
    eventually(lambda: _backends(gw)[victim_backend]["healthy"], 10, "the backend back in rotation")
