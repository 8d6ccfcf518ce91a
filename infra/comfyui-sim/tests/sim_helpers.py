"""Helpers for the simulator tests: a real server on a free port, workflows, polling."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from comfyui_sim.app import create_app
from comfyui_sim.config import Settings
from websockets.sync.client import ClientConnection, connect

T = TypeVar("T")
DEADLINE_SECONDS = 15.0
POLL_INTERVAL_SECONDS = 0.02

Message = dict[str, Any]


def poll(
    check: Callable[[], T | None], *, timeout: float = DEADLINE_SECONDS, what: str = "condition"
) -> T:
    """Call ``check`` until it returns something other than None (or False), or fail."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(POLL_INTERVAL_SECONDS)


@dataclass
class SimServer:
    base_url: str
    ws_url: str
    output_dir: Path
    temp_dir: Path
    input_dir: Path
    http: httpx.Client

    @contextmanager
    def websocket(self, client_id: str) -> Iterator[ClientConnection]:
        with connect(f"{self.ws_url}/ws?clientId={client_id}", open_timeout=5) as ws:
            yield ws

    def submit(
        self,
        prompt: dict[str, Any],
        *,
        client_id: str | None = None,
        prompt_id: str | None = None,
        extra_data: dict[str, Any] | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {"prompt": prompt}
        if client_id is not None:
            body["client_id"] = client_id
        if prompt_id is not None:
            body["prompt_id"] = prompt_id
        if extra_data is not None:
            body["extra_data"] = extra_data
        return self.http.post("/prompt", json=body)

    def history(self, prompt_id: str) -> dict[str, Any]:
        response = self.http.get(f"/history/{prompt_id}")
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    def wait_history(self, prompt_id: str, timeout: float = DEADLINE_SECONDS) -> dict[str, Any]:
        body = poll(
            lambda: self.history(prompt_id) or None,
            timeout=timeout,
            what=f"history of {prompt_id}",
        )
        entry: dict[str, Any] = body[prompt_id]
        return entry

    def faults(self, **changes: Any) -> dict[str, Any]:
        response = self.http.post("/sim/faults", json=changes)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@contextmanager
def running_simulator(root: Path, **settings: Any) -> Iterator[SimServer]:
    config = Settings(
        output_dir=root / "output", temp_dir=root / "temp", input_dir=root / "input", **settings
    )
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="comfyui-sim-test-server", daemon=True)
    thread.start()
    try:
        poll(lambda: server.started or None, what="the simulator to start")
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield SimServer(
                base_url=f"http://127.0.0.1:{port}",
                ws_url=f"ws://127.0.0.1:{port}",
                output_dir=root / "output",
                temp_dir=root / "temp",
                input_dir=root / "input",
                http=http,
            )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "the simulator did not stop"


def receive(ws: ClientConnection, timeout: float = DEADLINE_SECONDS) -> Message:
    raw = ws.recv(timeout=timeout)
    message: Message = json.loads(raw)
    return message


def receive_until(
    ws: ClientConnection,
    stop: Callable[[Message], bool],
    timeout: float = DEADLINE_SECONDS,
    on_message: Callable[[Message], None] | None = None,
) -> list[Message]:
    """Every message up to and including the first for which ``stop`` is true."""
    deadline = time.monotonic() + timeout
    messages: list[Message] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            kinds = [m["type"] for m in messages]
            raise AssertionError(f"timed out after {timeout}s; received {kinds}")
        try:
            message = receive(ws, remaining)
        except TimeoutError as ex:
            kinds = [m["type"] for m in messages]
            raise AssertionError(f"timed out after {timeout}s; received {kinds}") from ex
        messages.append(message)
        if on_message is not None:
            on_message(message)
        if stop(message):
            return messages


def drain(ws: ClientConnection, quiet_seconds: float = 0.3) -> list[Message]:
    """Messages that arrive until the socket has been quiet for ``quiet_seconds``."""
    messages: list[Message] = []
    while True:
        try:
            messages.append(receive(ws, quiet_seconds))
        except TimeoutError:
            return messages


def is_done(prompt_id: str) -> Callable[[Message], bool]:
    """The completion signal: ``executing`` with ``node: null`` for this prompt."""

    def check(message: Message) -> bool:
        data = message.get("data", {})
        return (
            message["type"] == "executing"
            and data.get("node") is None
            and data.get("prompt_id") == prompt_id
        )

    return check


def new_id() -> str:
    return str(uuid.uuid4())


def image_workflow(
    *,
    prefix: str = "test/img",
    seed: int = 1,
    width: int = 64,
    height: int = 48,
    batch_size: int = 1,
    color: int = 0x3366CC,
) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": width, "height": height, "batch_size": batch_size, "color": color},
        },
        "2": {
            "class_type": "ImageAddNoise",
            "inputs": {"image": ["1", 0], "seed": seed, "strength": 0.4},
        },
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": prefix},
        },
    }


def webp_workflow(prefix: str = "anim/clip", frames: int = 4, seed: int = 7) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 32, "height": 32, "batch_size": frames, "color": 0xFF0000},
        },
        "2": {
            "class_type": "ImageAddNoise",
            "inputs": {"image": ["1", 0], "seed": seed, "strength": 0.5},
        },
        "3": {
            "class_type": "SaveAnimatedWEBP",
            "inputs": {
                "images": ["2", 0],
                "filename_prefix": prefix,
                "fps": 6.0,
                "lossless": False,
                "quality": 80,
                "method": "default",
            },
        },
    }


def audio_workflow(prefix: str = "audio/sound", seconds: float = 0.5) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyAudio",
            "inputs": {"duration": seconds, "sample_rate": 44100, "channels": 2},
        },
        "2": {
            "class_type": "SaveAudio",
            "inputs": {"audio": ["1", 0], "filename_prefix": prefix},
        },
    }


def video_workflow(prefix: str = "video/clip", with_audio: bool = True) -> dict[str, Any]:
    create_inputs: dict[str, Any] = {"images": ["2", 0], "fps": 8.0}
    if with_audio:
        create_inputs["audio"] = ["4", 0]
    workflow: dict[str, Any] = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 48, "batch_size": 8, "color": 0x00AA00},
        },
        "2": {
            "class_type": "ImageAddNoise",
            "inputs": {"image": ["1", 0], "seed": 3, "strength": 0.3},
        },
        "3": {"class_type": "CreateVideo", "inputs": create_inputs},
        "5": {
            "class_type": "SaveVideo",
            "inputs": {
                "video": ["3", 0],
                "filename_prefix": prefix,
                "format": "auto",
                "codec": "auto",
            },
        },
    }
    if with_audio:
        workflow["4"] = {
            "class_type": "EmptyAudio",
            "inputs": {"duration": 1.0, "sample_rate": 44100, "channels": 2},
        }
    return workflow
