"""What kiln adds on top of ComfyUI: latency per run and sustained runs per second.

Starts the whole system as real processes (NATS, the ComfyUI simulator, the four services),
then runs ``noise`` through the gateway:

1. one client, one run at a time: kiln's added latency without load;
2. 32 concurrent clients: added latency under load and completed runs per second.

Added latency of one run = (gateway accepted → run ``completed``, from the run's own events)
minus (the simulator's ``POST /prompt`` received → ``execution_success``, from its prompt log and
history). It includes everything kiln does: queueing in JetStream, the pipeline's submit and
follow, media-service fetching, checksumming and storing the file.

    uv run python bench/pipeline_overhead.py [--runs 320] [--serial-runs 30] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import nats
from kiln_devstack.stack import Stack, StackConfig

FINAL_EVENTS = ("stored", "failed", "cancelled")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


class Bench:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.done: dict[str, asyncio.Future[str]] = {}
        self.without_workflow: list[str] = []

    async def run_one(self, gateway: httpx.AsyncClient) -> str:
        response = await gateway.post(
            "/api/runs",
            json={"workflow": "noise", "input_text": "", "params": {"width": 64, "height": 64}},
        )
        response.raise_for_status()
        run_id: str = response.json()["run_id"]
        future = self.done.setdefault(run_id, asyncio.get_running_loop().create_future())
        outcome = await asyncio.wait_for(future, timeout=300)
        if outcome != "stored":
            raise RuntimeError(f"run {run_id} ended {outcome}")
        return run_id

    async def phase(self, clients: int, runs: int) -> tuple[list[str], float]:
        remaining = runs
        finished: list[str] = []

        async def client(gateway: httpx.AsyncClient) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                finished.append(await self.run_one(gateway))

        async with httpx.AsyncClient(base_url=self.stack.gateway_url, timeout=30) as gateway:
            started = time.perf_counter()
            await asyncio.gather(*(client(gateway) for _ in range(clients)))
            elapsed = time.perf_counter() - started
        return finished, elapsed

    async def added_latencies(self, run_ids: list[str]) -> tuple[list[float], dict[str, float]]:
        sim_url = self.stack.urls["comfyui-sim"]
        async with (
            httpx.AsyncClient(base_url=self.stack.gateway_url, timeout=30) as gateway,
            httpx.AsyncClient(base_url=sim_url, timeout=30) as sim,
        ):
            received = {
                p["prompt_id"]: p["received_at"] / 1000
                for p in (await sim.get("/sim/prompts")).json()
                if p["accepted"]
            }
            latencies = []
            steps: dict[str, list[float]] = {}
            for run_id in run_ids:
                record = (await gateway.get(f"/api/runs/{run_id}")).json()
                at = {
                    e["event"]: datetime.fromisoformat(e["at"]).timestamp()
                    for e in record["events"]
                }
                entry = (await sim.get(f"/history/{run_id}")).json()[run_id]
                success = next(
                    m[1]["timestamp"] / 1000
                    for m in entry["status"]["messages"]
                    if m[0] == "execution_success"
                )
                kiln_total = at["stored"] - at["created"]
                comfy_own = success - received[run_id]
                latencies.append(kiln_total - comfy_own)
                if not any(e["type"] == "workflow" for e in record["entities"]):
                    self.without_workflow.append(run_id)
                if "started" not in at:
                    continue  # media applied `started` after the run had moved on
                for name, begin, end in (
                    ("accepted→started", at["created"], at["started"]),
                    ("started→comfy received", at["started"], received[run_id]),
                    ("comfy done→generated", success, at["generated"]),
                    ("generated→stored", at["generated"], at["stored"]),
                ):
                    steps.setdefault(name, []).append(end - begin)
            return latencies, {k: statistics.median(v) for k, v in steps.items()}

    async def main(self, args: argparse.Namespace) -> None:
        nc = await nats.connect(self.stack.nats_url)

        async def on_final(message: Any) -> None:
            _, run_id, event = message.subject.split(".")
            future = self.done.setdefault(run_id, asyncio.get_running_loop().create_future())
            if not future.done():
                future.set_result(event)

        for event in FINAL_EVENTS:
            await nc.subscribe(f"runs.*.{event}", cb=on_final)
        try:
            await self.phase(4, 8)  # warm-up: connections, caches, imports
            serial, _ = await self.phase(1, args.serial_runs)
            serial_added, serial_steps = await self.added_latencies(serial)
            loaded, elapsed = await self.phase(args.clients, args.runs)
            loaded_added, _ = await self.added_latencies(loaded)
        finally:
            await nc.close()

        def show(label: str, values: list[float]) -> None:
            ms = [v * 1000 for v in values]
            print(
                f"{label}: n={len(ms)}  p50={_percentile(ms, 0.5):.1f} ms  "
                f"p99={_percentile(ms, 0.99):.1f} ms  mean={statistics.fmean(ms):.1f} ms"
            )

        print(
            f"machine: {platform.node()} · {platform.machine()} · {_cpu_model()} · "
            f"{_cpus()} CPUs · Python {platform.python_version()}"
        )
        show("kiln added latency, 1 client ", serial_added)
        print(
            "  medians, 1 client: "
            + "  ".join(f"{k} {v * 1000:.1f} ms" for k, v in serial_steps.items())
        )
        show(f"kiln added latency, {args.clients} clients", loaded_added)
        if self.without_workflow:
            print(
                f"WARNING: {len(self.without_workflow)} completed run(s) without 02_workflow.json "
                f"(e.g. {self.without_workflow[0]})"
            )
        print(
            f"sustained: {len(loaded) / elapsed:.1f} completed runs/s with {args.clients} "
            f"concurrent clients ({len(loaded)} runs in {elapsed:.1f} s)"
        )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=320, help="runs under load")
    parser.add_argument("--serial-runs", type=int, default=30, help="runs one at a time")
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="kiln-bench-") as var_dir,
        Stack(StackConfig(var_dir=Path(var_dir), extra_env={"KILN_LOG_LEVEL": "WARNING"})) as stack,
    ):
        asyncio.run(Bench(stack).main(args))


if __name__ == "__main__":
    main()
