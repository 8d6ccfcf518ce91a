"""The run event stream against a real NATS: an event already in the stream but not yet in the
record when the stream opens must still be delivered (found by the browser tests: the stream
then sent only heartbeats and never ended)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from kiln_common.nats import ensure_streams, publish_run_event
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import RunFailed, RunStarted
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunHistoryEntry, RunRecord, RunRequest, RunStatus, Stage, utc_now
from kiln_contracts.subjects import RunEventName, run_event_subject
from kiln_devstack.stack import Stack, StackConfig
from kiln_gateway.events import RunEventStream

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    stack = Stack(StackConfig(var_dir=tmp_path_factory.mktemp("nats") / Path("var")))
    stack.start_nats()
    try:
        yield stack.nats_url
    finally:
        stack.stop()


def _stale_record(run_id: str) -> RunRecord:
    now = utc_now()
    return RunRecord(
        run_id=run_id,
        status=RunStatus.RUNNING,
        created_at=now,
        updated_at=now,
        request=RunRequest(workflow="noise", input_text="x"),
        events=[RunHistoryEntry(at=now, event="created", status=RunStatus.QUEUED)],
    )


def test_an_event_published_before_the_stream_opens_is_delivered(nats_url: str) -> None:
    async def scenario() -> list[dict[str, object]]:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await ensure_streams(js)
        run_id = new_run_id()
        started = RunStarted(run_id=run_id, backend="b", backend_url="http://b", graph={})
        await publish_run_event(js, run_event_subject(run_id, RunEventName.STARTED), started)
        failed = RunFailed(
            run_id=run_id, stage=Stage.BACKEND, code=ErrorCode.BACKEND_ERROR, message="boom"
        )
        await publish_run_event(js, run_event_subject(run_id, RunEventName.FAILED), failed)

        async def read_record() -> RunRecord:
            return _stale_record(run_id)  # media has not applied `failed` yet

        stream = RunEventStream(nc, js, run_id, heartbeat_seconds=0.2)
        await stream.open(None, read_record)
        states: list[dict[str, object]] = []

        async def collect() -> None:
            async for chunk in stream.stream():
                for block in chunk.decode().split("\n\n"):
                    lines = block.splitlines()
                    if "event: state" in lines:
                        data = next(line for line in lines if line.startswith("data: "))
                        states.append(json.loads(data.removeprefix("data: ")))

        try:
            await asyncio.wait_for(collect(), timeout=10)
        finally:
            await nc.close()
        return states

    states = asyncio.run(scenario())
    assert [s["status"] for s in states] == ["running", "failed"]
    assert states[-1]["error"]["code"] == "backend_error"  # type: ignore[index]
