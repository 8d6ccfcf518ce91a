"""Scale-out and fault tolerance (issue 8): N concurrent runs while parts of the system die.

Every run must end completed or failed with a reason; none lost, duplicated or left waiting;
every completed run's files match their sha256; no metadata.json torn. Figures are printed
(`-s` shows them; `make chaos` runs 200 runs per scenario).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from kiln_devstack.stack import Stack, StackConfig
from support.chaos_harness import ChaosLoad, ChaosReport, account, probe_recovery

# Its own deadlines (submit 180 s, recovery 120 s, final 240 s) come first; 900 s catches a hang.
pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.timeout(900)]

CHAOS_ENV = {
    # The load comes from one client; the per-device limit is not what is under test here.
    "KILN_GATEWAY_RUNS_PER_DEVICE_PER_MINUTE": "1000000",
    "KILN_GATEWAY_MAX_QUEUE_DEPTH": "100000",
    # Replicas of the gateway must agree on cookies.
    "KILN_GATEWAY_COOKIE_SECRET": "chaos-suite-cookie-secret-0123456789",
}
Fault = Callable[[Stack], Awaitable[None]]


@pytest.fixture
def chaos_stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    simulators = getattr(request, "param", 1)
    with Stack(
        StackConfig(var_dir=tmp_path / "var", extra_env=CHAOS_ENV, simulators=simulators)
    ) as stack:
        yield stack


async def run_scenario(
    name: str, stack: Stack, gateways: list[str], runs: int, fault: Fault | None
) -> ChaosReport:
    report = ChaosReport(scenario=name, intended=runs)
    before = {p.parent.name for p in stack.storage_root.glob("runs/*/*/metadata.json")}
    load = ChaosLoad(gateways, runs)
    started = time.monotonic()
    submitting = asyncio.create_task(load.submit_all())
    probes: set[str] = set()
    if fault is not None:
        # Strike while runs are in every stage: some accepted, some still arriving.
        async with asyncio.timeout(60):
            await load.wait_accepted(runs // 4)
        fault_at = time.monotonic()
        await fault(stack)
        report.longest_recovery_seconds = await probe_recovery(gateways[0], fault_at, probes)
    accepted = await submitting
    records = await load.wait_final(list(accepted.values()), deadline_seconds=240)
    report.wall_seconds = time.monotonic() - started
    report.refused_attempts = load.refused_attempts
    account(report, accepted, records, stack.storage_root, before, probes)
    print(report.summary())
    return report


async def kill_and_restart(stack: Stack, key: str) -> None:
    await asyncio.to_thread(stack.processes[key].kill)
    await asyncio.to_thread(stack.restart, key)


def test_media_service_killed_and_restarted(chaos_stack: Stack, chaos_runs: int) -> None:
    report = asyncio.run(
        run_scenario(
            "media SIGKILL",
            chaos_stack,
            [chaos_stack.gateway_url],
            chaos_runs,
            lambda s: kill_and_restart(s, "media"),
        )
    )
    report.assert_promises_kept()


def test_nats_killed_and_restarted_on_its_store(chaos_stack: Stack, chaos_runs: int) -> None:
    report = asyncio.run(
        run_scenario(
            "NATS SIGKILL",
            chaos_stack,
            [chaos_stack.gateway_url],
            chaos_runs,
            lambda s: kill_and_restart(s, "nats"),
        )
    )
    report.assert_promises_kept()


@pytest.mark.parametrize("chaos_stack", [2], indirect=True)
def test_one_of_two_comfyui_backends_dies_for_good(chaos_stack: Stack, chaos_runs: int) -> None:
    async def kill_backend(stack: Stack) -> None:
        await asyncio.to_thread(stack.processes["comfyui-sim-2"].kill)

    report = asyncio.run(
        run_scenario(
            "ComfyUI backend lost", chaos_stack, [chaos_stack.gateway_url], chaos_runs, kill_backend
        )
    )
    report.assert_promises_kept()


def test_two_replicas_of_every_service_behind_two_gateways(
    chaos_stack: Stack, chaos_runs: int
) -> None:
    stack = chaos_stack
    for name in ("media", "pipeline", "export"):
        stack.start_replica(name, 2)
    peers = {
        "KILN_MEDIA_URL": stack.urls["media-2"],
        "KILN_PIPELINE_URL": stack.urls["pipeline-2"],
        "KILN_EXPORT_URL": stack.urls["export-2"],
    }
    second_gateway = stack.start_replica("gateway", 2, peers)
    report = asyncio.run(
        run_scenario(
            "two replicas each", stack, [stack.gateway_url, second_gateway], chaos_runs, None
        )
    )
    report.assert_promises_kept()
    assert report.completed == chaos_runs, report.summary()
