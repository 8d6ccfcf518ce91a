"""Helpers for media-service integration tests: its internal HTTP API, files on the simulator
and run events published to NATS the way pipeline-service publishes them."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from kiln_common.nats import publish_run_event
from kiln_contracts.events import GeneratedOutput, RunGenerated, RunMessage, RunStarted
from kiln_contracts.ids import new_run_id
from kiln_contracts.subjects import HEADER_MSG_ID, HEADER_RUN_ID, RunEventName, run_event_subject
from kiln_devstack.processes import ManagedProcess, free_port, http_ok, wait_until
from kiln_devstack.stack import Stack
from PIL import Image


@pytest.fixture
def media(stack: Stack) -> Iterator[httpx.Client]:
    """media-service itself (its internal API; the gateway exposes it under /api/)."""
    with httpx.Client(base_url=stack.urls["media"], timeout=10) as client:
        yield client


def create_run(media: httpx.Client, **request: Any) -> str:
    """Create a run as the gateway does (the gateway mints ids; here the test stands in)."""
    run_id = new_run_id()
    body = {"run_id": run_id, "request": {"workflow": "noise", "input_text": "x", **request}}
    response = media.post("/runs", json=body)
    assert response.status_code == 201, response.text
    return run_id


def png_bytes(width: int, height: int, colour: tuple[int, int, int] = (10, 20, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def sim_output_dir(stack: Stack) -> Path:
    return stack.var_dir / "comfyui-sim" / "output"


def put_on_simulator(stack: Stack, run_id: str, name: str, data: bytes) -> GeneratedOutput:
    """A file in the simulator's output folder, as a Save node would have written it."""
    folder = sim_output_dir(stack) / "kiln-test" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return GeneratedOutput(
        node_id="9", kind="images", filename=name, subfolder=f"kiln-test/{run_id}"
    )


def generated_event(stack: Stack, run_id: str, *outputs: GeneratedOutput) -> RunGenerated:
    url = stack.urls["comfyui-sim"]
    return RunGenerated(run_id=run_id, backend="comfyui-0", backend_url=url, outputs=list(outputs))


def started_event(stack: Stack, run_id: str) -> RunStarted:
    url = stack.urls["comfyui-sim"]
    return RunStarted(run_id=run_id, backend="comfyui-0", backend_url=url, seed=7, graph={"9": {}})


def publish(
    stack: Stack,
    event: RunMessage,
    name: RunEventName,
    *,
    redelivery: bool = False,
    nats_url: str | None = None,
) -> None:
    """Publish a run event as the pipeline does. ``redelivery`` gives it a fresh Nats-Msg-Id so
    JetStream cannot drop it: the consumer really receives the same event a second time."""

    async def send() -> None:
        nc = await nats.connect(nats_url or stack.nats_url)
        try:
            js = nc.jetstream()
            subject = run_event_subject(event.run_id, name)
            if redelivery:
                headers = {HEADER_MSG_ID: f"redelivery-{uuid.uuid4()}", HEADER_RUN_ID: event.run_id}
                await js.publish(subject, event.model_dump_json().encode(), headers=headers)
            else:
                await publish_run_event(js, subject, event)
        finally:
            await nc.close()

    asyncio.run(send())


def media_log_lines(stack: Stack, name: str = "media") -> list[dict[str, Any]]:
    path = stack.logs_dir / f"{name}.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@contextmanager
def media_replica(
    stack: Stack, name: str, extra_env: dict[str, str] | None = None
) -> Iterator[httpx.Client]:
    """Another media-service process on the same storage root and the same NATS."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "kiln_media.app:create_app", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    env = {**stack.service_env(), "KILN_INSTANCE_ID": name, **(extra_env or {})}
    process = ManagedProcess(name, argv, stack.logs_dir / f"{name}.log", env=env)
    process.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(http_ok(f"{url}/readyz"), 60, f"{name} ready", process)
        with httpx.Client(base_url=url, timeout=10) as client:
            yield client
    finally:
        process.stop()
