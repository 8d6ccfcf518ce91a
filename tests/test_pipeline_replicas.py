"""Two pipeline replicas share the work queue; a cancel request reaches whichever replica drives
the run (every replica hears ``runs.*.cancel``, the one that has the run acts)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import httpx
import pytest
from kiln_devstack.processes import ManagedProcess, free_port, http_ok, wait_until
from kiln_devstack.stack import Stack, StackConfig
from support.kiln_pipeline_testkit import set_faults, start_run, submissions, wait_running
from support.kiln_polling import eventually, wait_final

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # One run per replica at a time, so two slow runs are driven by two replicas.
    env = {"KILN_PIPELINE_MAX_IN_FLIGHT_PER_BACKEND": "1"}
    config = StackConfig(var_dir=tmp_path_factory.mktemp("replica-stack"), extra_env=env)
    with Stack(config) as stack:
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "kiln_pipeline.app:create_app", "--factory"]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        second = ManagedProcess(
            "pipeline-2",
            argv,
            stack.logs_dir / "pipeline-2.log",
            env={**stack.service_env(), "KILN_INSTANCE_ID": "pipeline-2"},
        )
        second.start()
        try:
            wait_until(http_ok(f"http://127.0.0.1:{port}/readyz"), 60, "pipeline-2", second)
            yield stack
        finally:
            second.stop()


def test_cancel_reaches_the_replica_driving_each_run(replicated: Stack) -> None:
    with (
        httpx.Client(base_url=replicated.gateway_url, timeout=10) as gateway,
        httpx.Client(base_url=replicated.urls["comfyui-sim"], timeout=10) as sim,
    ):
        set_faults(sim, node_delay_seconds=2.0)
        running = start_run(gateway)
        wait_running(sim, running)
        queued = start_run(gateway)
        eventually(lambda: queued in sim.get("/sim/state").json()["pending"], 10, "2nd on sim")
        clients = {submissions(sim, r)[0]["client_id"] for r in (running, queued)}
        assert clients == {"kiln-pipeline-pipeline-1", "kiln-pipeline-pipeline-2"}
        # Both replicas are full: a third run waits in JetStream.
        waiting = start_run(gateway)
        # The waiting run's cancel goes first: cancelling the others frees a replica, which
        # then picks the waiting run up and must find its cancel request in the stream.
        for run_id in (waiting, queued, running):
            assert gateway.post(f"/api/runs/{run_id}/cancel").status_code == 202
        for run_id in (running, queued, waiting):
            assert wait_final(gateway, run_id, timeout=30)["status"] == "cancelled"
        assert submissions(sim, waiting) == []
        # As in ComfyUI, the interrupt takes effect once the running node has finished; the
        # record is final only once the simulator has confirmed it, and says what it did.
        assert sim.get("/sim/state").json()["running"] is None
        assert sim.get("/sim/state").json()["pending"] == []
        entry = sim.get(f"/history/{running}").json()[running]
        assert entry["status"]["messages"][-1][0] == "execution_interrupted"
        outcomes = {
            run_id: wait_final(gateway, run_id)["events"][-1]["detail"]["backend_outcome"]
            for run_id in (running, queued, waiting)
        }
        assert outcomes == {
            running: "interrupted",
            queued: "dequeued",
            waiting: "never_submitted",
        }
