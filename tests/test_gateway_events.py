"""Live run events (SSE): current state first, then progress and state changes, end after a
final state; heartbeats; Last-Event-ID resumption; any replica serves any run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import nats
import pytest
from kiln_contracts.subjects import RUNS_STREAM
from kiln_devstack.stack import Stack
from support.kiln_gateway_helpers import RUN_BODY, gateway_replica, read_sse, simulator_faults
from support.kiln_polling import eventually, wait_final

pytestmark = pytest.mark.integration

ORDER = ["queued", "running", "storing", "completed"]


@pytest.fixture(scope="module")
def second_gateway(stack: Stack) -> Iterator[str]:
    with gateway_replica(stack, "gateway-2", KILN_GATEWAY_SSE_HEARTBEAT_SECONDS="0.2") as url:
        yield url


@pytest.fixture
def replica(second_gateway: str, gateway: httpx.Client) -> Iterator[httpx.Client]:
    """A client of the second replica that carries the same device cookie as ``gateway``."""
    assert gateway.get("/api/me").status_code == 200  # the device cookie is issued here
    with httpx.Client(base_url=second_gateway, timeout=10, cookies=gateway.cookies) as client:
        yield client


def start_run(gateway: httpx.Client) -> str:
    response = gateway.post("/api/runs", json=RUN_BODY)
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


def test_a_run_created_on_one_replica_streams_from_another_to_completed(
    stack: Stack, gateway: httpx.Client, replica: httpx.Client
) -> None:
    with simulator_faults(stack, node_delay_seconds=0.4):
        run_id = start_run(gateway)
        read = read_sse(replica, f"/api/runs/{run_id}/events")

    assert read.ended_by_server, "the stream must end after the final state"
    first = read.events[0]
    assert first.event == "state"
    snapshot = first.json()
    assert snapshot["event"] == "snapshot"
    assert snapshot["record"]["run_id"] == run_id
    assert snapshot["status"] in ("queued", "running")

    states = [e.json() for e in read.events if e.event == "state"]
    statuses = [s["status"] for s in states]
    assert statuses[-1] == "completed"
    assert statuses == sorted(statuses, key=ORDER.index), statuses  # never backwards
    assert len(set(statuses)) == len(statuses), statuses  # each state once
    assert "running" in statuses or "storing" in statuses

    progress = [e.json() for e in read.events if e.event == "progress"]
    assert progress, "slow nodes report progress"
    assert all(p["run_id"] == run_id and 0 <= p["share"] <= 1 for p in progress)
    # State events carry resumable ids that grow; progress is ephemeral and has none.
    ids = [int(e.id) for e in read.events if e.event == "state" and e.id is not None]
    assert ids == sorted(ids)
    assert all(e.id is None for e in read.events if e.event == "progress")


def test_a_quiet_stream_sends_heartbeats(
    stack: Stack, gateway: httpx.Client, replica: httpx.Client
) -> None:
    # ComfyUI writes history late: nothing happens for a while (the replica beats every 0.2 s).
    with simulator_faults(stack, history_delay_seconds=1.0):
        run_id = start_run(gateway)
        read = read_sse(replica, f"/api/runs/{run_id}/events")
    assert read.ended_by_server
    assert read.comments.count("heartbeat") >= 2, read.comments
    assert read.events[-1].json()["status"] == "completed"


def test_a_finished_run_sends_its_final_state_and_ends(
    gateway: httpx.Client, replica: httpx.Client
) -> None:
    run_id = start_run(gateway)
    assert wait_final(gateway, run_id)["status"] == "completed"
    read = read_sse(replica, f"/api/runs/{run_id}/events")
    assert read.ended_by_server
    assert [e.event for e in read.events] == ["state"]
    only = read.events[0].json()
    assert only["status"] == "completed"
    assert only["record"]["entities"], "the first event carries the whole record"


def test_last_event_id_resumes_after_the_last_seen_state(
    stack: Stack, gateway: httpx.Client, replica: httpx.Client
) -> None:
    with simulator_faults(stack, node_delay_seconds=0.5):
        run_id = start_run(gateway)
        # Read up to the first state change after the snapshot, then drop the connection.
        first = read_sse(gateway, f"/api/runs/{run_id}/events", stop_after=2)
        seen = [e for e in first.events if e.event == "state"]
        last_id = seen[-1].id
        assert last_id is not None
        # Reconnect to the other replica, as a browser's EventSource would.
        resumed = read_sse(
            replica, f"/api/runs/{run_id}/events", headers={"Last-Event-ID": last_id}
        )

    assert resumed.ended_by_server
    states = [e for e in resumed.events if e.event == "state"]
    assert states[0].json()["event"] == "snapshot"
    later = states[1:]
    assert all(int(e.id or 0) > int(last_id) for e in later), [e.id for e in later]
    assert states[-1].json()["status"] == "completed"
    before = {e.json()["event"] for e in seen[1:]}
    assert not before & {e.json()["event"] for e in later}, "an event was sent twice"


def test_a_failed_run_ends_the_stream_with_its_error(
    stack: Stack, gateway: httpx.Client, replica: httpx.Client
) -> None:
    with simulator_faults(
        stack,
        node_delay_seconds=0.3,
        node_error={"class_type": "SaveImage", "message": "disk on fire", "times": 1},
    ):
        run_id = start_run(gateway)
        read = read_sse(replica, f"/api/runs/{run_id}/events")
    assert read.ended_by_server
    final = read.events[-1].json()
    assert final["status"] == "failed"
    assert final["error"]["code"]
    assert "disk on fire" in final["error"]["message"]


def test_events_of_an_unknown_run_or_bad_resume_id_are_json_errors(gateway: httpx.Client) -> None:
    missing = "01900000-0000-7000-8000-000000000000"
    response = gateway.get(f"/api/runs/{missing}/events")
    assert response.status_code == 404
    assert response.json()["error"] == "run_not_found"
    run_id = start_run(gateway)
    response = gateway.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "abc"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_another_device_cannot_follow_a_run(stack: Stack, gateway: httpx.Client) -> None:
    run_id = start_run(gateway)
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as stranger:
        response = stranger.get(f"/api/runs/{run_id}/events")
    assert response.status_code == 404
    assert response.json()["error"] == "run_not_found"


def consumer_count(nats_url: str) -> int:
    async def count() -> int:
        nc = await nats.connect(nats_url)
        try:
            info = await nc.jetstream().stream_info(RUNS_STREAM)
            return int(info.state.consumer_count)
        finally:
            await nc.close()

    return asyncio.run(count())


def test_a_dropped_connection_leaves_no_subscription_behind(
    stack: Stack, gateway: httpx.Client
) -> None:
    baseline = consumer_count(stack.nats_url)
    with simulator_faults(stack, node_delay_seconds=1.0):
        run_id = start_run(gateway)
        read = read_sse(gateway, f"/api/runs/{run_id}/events", stop_after=1)
        assert not read.ended_by_server  # we hung up mid-run
        eventually(
            lambda: consumer_count(stack.nats_url) <= baseline,
            timeout=20,
            what="the stream's JetStream consumer to go away",
        )
        wait_final(gateway, run_id, timeout=60)
