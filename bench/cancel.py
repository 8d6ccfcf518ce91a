"""How long a cancel of a run waiting in kiln's backlog takes to be final (issue 15 item 3: ≤ 1 s).

Starts the whole system as real processes with one slot for the one simulated ComfyUI, keeps
that slot busy with a slow run, queues runs behind it, then cancels each waiting run and times
``POST /api/runs/{id}/cancel`` sent → ``GET /api/runs/{id}`` says ``cancelled`` (polled every
10 ms; what a client sees). The pipeline never needs a free slot for it.

    uv run python bench/cancel.py [--runs 40]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from kiln_devstack.stack import Stack, StackConfig

BODY = {"workflow": "noise", "input_text": "", "params": {"width": 16, "height": 16}}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def _cancel_latency(gateway: httpx.Client, run_id: str) -> float:
    started = time.perf_counter()
    answer = gateway.post(f"/api/runs/{run_id}/cancel")
    answer.raise_for_status()
    while time.perf_counter() - started < 30:
        status = gateway.get(f"/api/runs/{run_id}").json()["status"]
        if status == "cancelled":
            return time.perf_counter() - started
        if status in ("completed", "failed"):
            raise RuntimeError(f"run {run_id} ended {status}, not cancelled")
        time.sleep(0.01)
    raise RuntimeError(f"run {run_id} not cancelled within 30 s")


def _measure(stack: Stack, gateway: httpx.Client, runs: int) -> list[float]:
    sim_url = stack.urls["comfyui-sim"]
    # Three nodes of 20 s: the one slot stays busy for the whole measurement.
    httpx.post(f"{sim_url}/sim/faults", json={"node_delay_seconds": 20}).raise_for_status()
    busy = gateway.post("/api/runs", json=BODY).json()["run_id"]
    deadline = time.monotonic() + 30
    while httpx.get(f"{sim_url}/sim/state").json()["running"] != busy:
        if time.monotonic() > deadline:
            raise RuntimeError("the busy run never started")
        time.sleep(0.05)
    waiting = [gateway.post("/api/runs", json=BODY).json()["run_id"] for _ in range(runs)]
    latencies = [_cancel_latency(gateway, run_id) for run_id in waiting]
    gateway.post(f"/api/runs/{busy}/cancel")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    env = {
        "KILN_PIPELINE_MAX_IN_FLIGHT_PER_BACKEND": "1",
        "KILN_GATEWAY_RUNS_PER_DEVICE_PER_MINUTE": "10000",
    }
    with (
        tempfile.TemporaryDirectory(prefix="kiln-bench-cancel-") as var,
        Stack(StackConfig(var_dir=Path(var), extra_env=env)) as stack,
        httpx.Client(base_url=stack.gateway_url, timeout=10) as gateway,
    ):
        latencies = _measure(stack, gateway, args.runs)
    ms = [s * 1000 for s in latencies]
    print(
        f"kiln backlog cancel, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"{len(ms)} cancels of runs waiting behind a busy slot (POST cancel → record cancelled)")
    print(
        f"median {statistics.median(ms):.0f} ms, p95 {_percentile(ms, 0.95):.0f} ms, "
        f"max {max(ms):.0f} ms (goal: 1000 ms)"
    )


if __name__ == "__main__":
    main()
