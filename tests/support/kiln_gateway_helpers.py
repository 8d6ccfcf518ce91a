"""Helpers for the gateway's integration tests: extra gateway replicas, SSE reading, the
researcher token of the dev stack, simulator faults."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from kiln_devstack.processes import ManagedProcess, free_port, http_ok, wait_until
from kiln_devstack.stack import SERVICES, Stack

# The dev stack sets no token, so every gateway uses the documented dev default.
RESEARCHER = {"Authorization": "Bearer kiln-dev-researcher-token"}
RUN_BODY = {"workflow": "noise", "input_text": "a red kite", "params": {"width": 32, "height": 32}}


@contextmanager
def gateway_replica(
    stack: Stack, name: str, ready_path: str = "/readyz", **env: str
) -> Iterator[str]:
    """Another gateway process on the same NATS and services (what a second replica behind a
    load balancer is), with extra ``KILN_*`` settings."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "uvicorn", SERVICES["gateway"], "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    process = ManagedProcess(
        name,
        argv,
        stack.logs_dir / f"{name}.log",
        env={**stack.service_env(), "KILN_INSTANCE_ID": name, **env},
    )
    process.start()
    try:
        wait_until(http_ok(f"{url}{ready_path}"), 60, f"{name} ready", process)
        yield url
    finally:
        process.stop()


@contextmanager
def simulator_faults(stack: Stack, **faults: Any) -> Iterator[None]:
    url = f"{stack.urls['comfyui-sim']}/sim/faults"
    httpx.post(url, json=faults, timeout=5).raise_for_status()
    try:
        yield
    finally:
        httpx.post(url, json={k: None for k in faults}, timeout=5).raise_for_status()


@dataclass
class SseEvent:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseRead:
    events: list[SseEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    ended_by_server: bool = False


def read_sse(
    client: httpx.Client,
    path: str,
    headers: dict[str, str] | None = None,
    stop_after: int | None = None,
    timeout: float = 30,
    on_event: Callable[[SseEvent], None] | None = None,
) -> SseRead:
    """Read an event stream until the server ends it (or ``stop_after`` events arrived),
    handing each event to ``on_event`` as it arrives."""
    read = SseRead()
    current: dict[str, str] = {}
    data: list[str] = []
    with client.stream("GET", path, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                read.comments.append(line[1:].strip())
            elif line == "":
                if "event" in current or data:
                    event = SseEvent(
                        current.get("event", "message"), "\n".join(data), current.get("id")
                    )
                    read.events.append(event)
                    if on_event is not None:
                        on_event(event)
                    if stop_after is not None and len(read.events) >= stop_after:
                        return read
                current, data = {}, []
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    data.append(value)
                else:
                    current[name] = value
        read.ended_by_server = True
    return read
