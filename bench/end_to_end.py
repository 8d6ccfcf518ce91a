"""End-to-end throughput and latency through the gateway: sustained runs per second and
POST → ``completed`` p50/p99 with N concurrent clients (default 32), the ComfyUI simulator at
zero latency.

Each client is a participant (its own device cookie) that loops: POST /api/runs, then follows
the run's SSE stream until its final state, then starts the next run. The client is asyncio +
aiohttp (not httpx, which saturates on its own long before the system does, docs/design.md §7); its
own CPU use is printed beside the services' so you can see it is not the limit.

    uv run python bench/end_to_end.py                 # starts its own dev stack
    uv run python bench/end_to_end.py --url http://127.0.0.1:8080   # an already running stack

Against an external stack, raise its per-device and queue limits first
(KILN_GATEWAY_RUNS_PER_DEVICE_PER_MINUTE, KILN_GATEWAY_MAX_QUEUE_DEPTH) or clients get 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

FINAL = {"completed", "failed", "cancelled"}
BODY = {"workflow": "noise", "input_text": "bench", "params": {"width": 32, "height": 32}}
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    post_latencies: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    measuring: bool = False

    def count(self, outcome: str) -> None:
        if self.measuring:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


async def follow(session: aiohttp.ClientSession, url: str, run_id: str) -> str:
    """Read the run's event stream until a final state; return that state."""
    async with session.get(f"{url}/api/runs/{run_id}/events") as response:
        if response.status != 200:
            return f"events-{response.status}"
        status = "unknown"
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                payload = json.loads(line[6:])
                if "status" in payload:
                    status = payload["status"]
                    if status in FINAL:
                        return str(status)
        return status


async def client(url: str, tally: Tally, stop: asyncio.Event) -> None:
    connector = aiohttp.TCPConnector(limit=4)
    # unsafe=True: keep cookies from an IP address (the device cookie of 127.0.0.1).
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as session:
        while not stop.is_set():
            started = time.perf_counter()
            async with session.post(f"{url}/api/runs", json=BODY) as response:
                if response.status != 202:
                    tally.count(f"http-{response.status}")
                    await asyncio.sleep(0.05)
                    continue
                run_id = (await response.json())["run_id"]
            if tally.measuring:
                tally.post_latencies.append(time.perf_counter() - started)
            outcome = await follow(session, url, run_id)
            if tally.measuring and outcome == "completed":
                tally.latencies.append(time.perf_counter() - started)
            tally.count(outcome)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / CLK_TCK


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stage_sums(url: str) -> dict[str, tuple[float, float]]:
    """(sum, count) of kiln_run_stage_seconds by event, from the gateway's /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    sums: dict[str, list[float]] = {}
    for line in text.splitlines():
        for suffix, index in (("_sum", 0), ("_count", 1)):
            if line.startswith(f"kiln_run_stage_seconds{suffix}{{"):
                event = line.split('event="', 1)[1].split('"', 1)[0]
                sums.setdefault(event, [0.0, 0.0])[index] += float(line.rsplit(" ", 1)[1])
    return {event: (v[0], v[1]) for event, v in sums.items()}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(url: str, clients: int, warmup: float, seconds: float) -> tuple[Tally, float]:
    tally = Tally()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(client(url, tally, stop)) for _ in range(clients)]
    await asyncio.sleep(warmup)
    tally.measuring = True
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    tally.measuring = False
    elapsed = time.perf_counter() - started
    stop.set()
    await asyncio.wait(tasks, timeout=30)
    return tally, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="gateway of a running stack (default: start one)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KILN_X=V",
        help="extra setting for the started stack, e.g. KILN_PIPELINE_MAX_IN_FLIGHT_PER_BACKEND=32",
    )
    args = parser.parse_args()

    stack = None
    pids: dict[str, int] = {}
    url = args.url
    if url is None:
        from kiln_devstack.stack import Stack, StackConfig

        limits = {
            "KILN_GATEWAY_RUNS_PER_DEVICE_PER_MINUTE": "1000000",
            "KILN_GATEWAY_MAX_QUEUE_DEPTH": "1000000",
            "KILN_LOG_LEVEL": "WARNING",
            **dict(item.split("=", 1) for item in args.env),
        }
        var_dir = Path(tempfile.mkdtemp(prefix="kiln-bench-"))
        stack = Stack(StackConfig(var_dir=var_dir, extra_env=limits)).start()
        url = stack.gateway_url
        pids = {n: p.popen.pid for n, p in stack.processes.items() if p.popen is not None}
    try:
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        client_before = own_cpu()
        stages_before = stage_sums(url)
        tally, elapsed = asyncio.run(measure(url, args.clients, args.warmup, args.seconds))
        client_cpu = own_cpu() - client_before
        after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        stages_after = stage_sums(url)
    finally:
        if stack is not None:
            stack.stop()

    done = len(tally.latencies)
    print(f"end-to-end through the gateway: {args.clients} clients, {elapsed:.1f} s measured")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"  machine            : {os.cpu_count()} CPUs, load average {load} "
        f"(other work on the machine competes), Python {sys.version.split()[0]}"
    )
    if args.env:
        print(f"  stack settings     : {' '.join(args.env)}")
    print(f"  completed runs     : {done}  ({done / elapsed:.1f} runs/s sustained)")
    if done:
        print(
            f"  POST → completed   : p50 {percentile(tally.latencies, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(tally.latencies, 0.99) * 1000:.0f} ms, "
            f"mean {statistics.fmean(tally.latencies) * 1000:.0f} ms"
        )
    if tally.post_latencies:
        print(
            f"  POST → 202         : p50 {percentile(tally.post_latencies, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(tally.post_latencies, 0.99) * 1000:.0f} ms"
        )
    print(f"  outcomes           : {dict(sorted(tally.outcomes.items()))}")
    for event in ("started", "generated", "stored"):
        total, count = stages_after.get(event, (0.0, 0.0))
        total0, count0 = stages_before.get(event, (0.0, 0.0))
        if count > count0:
            mean = (total - total0) / (count - count0) * 1000
            print(f"  mint → {event:<11} : mean {mean:.0f} ms (gateway metrics)")
    print(f"  load client CPU    : {client_cpu / elapsed * 100:.0f}% of one core")
    for name in pids:
        used = (after[name] - before[name]) / elapsed * 100
        print(f"  {name:<18} : {used:.0f}% of one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
