"""The simulator's state and its one worker: queue, history, websockets, faults, restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comfyui_sim.config import Settings
from comfyui_sim.executor import Executor, OutputCache, RunOutcome, now_ms
from comfyui_sim.faults import Faults, FaultsUpdate, NodeErrorFault
from comfyui_sim.graph import validate_prompt
from comfyui_sim.hub import WebSocketHub
from comfyui_sim.model_nodes import model_node_definitions
from comfyui_sim.nodes import NodeDef, build_registry, input_images
from comfyui_sim.state import SENSITIVE_EXTRA_DATA_KEYS, History, PromptQueue, QueueItem

log = logging.getLogger("comfyui_sim")

CLOSE_GOING_AWAY = 1001
CLOSE_SERVICE_RESTART = 1012
RECEIVED_LOG_SIZE = 10_000  # /sim/prompts keeps the latest this many


@dataclass(frozen=True)
class Folders:
    output: Path
    temp: Path
    input: Path

    def by_type(self, kind: str) -> Path | None:
        return {"output": self.output, "temp": self.temp, "input": self.input}.get(kind)


def prepare_folders(settings: Settings) -> Folders:
    """Absolute folders, created if missing; unset ones become fresh temporary directories."""

    def folder(value: Path | None, name: str) -> Path:
        path = value if value is not None else Path(tempfile.mkdtemp(prefix=f"comfyui-sim-{name}-"))
        path = path.expanduser().absolute()
        path.mkdir(parents=True, exist_ok=True)
        return path

    return Folders(
        output=folder(settings.output_dir, "output"),
        temp=folder(settings.temp_dir, "temp"),
        input=folder(settings.input_dir, "input"),
    )


@dataclass
class Submission:
    """The answer to POST /prompt: status code and JSON body."""

    status: int
    body: dict[str, Any]


class Simulator:
    def __init__(self, settings: Settings, folders: Folders) -> None:
        self.settings = settings
        self.folders = folders
        self.registry: dict[str, NodeDef] = build_registry()
        self.registry.update({node.class_type: node for node in model_node_definitions()})
        self.queue = PromptQueue()
        self.history = History(settings.max_history)
        self.hub = WebSocketHub()
        self.faults = Faults()
        # Installed model files by folder; survives a restart, as files on disk do.
        self.models: dict[str, list[str]] = {
            "checkpoints": list(settings.checkpoints),
            "loras": list(settings.loras),
            "vae": list(settings.vae),
        }
        self.cache = OutputCache()
        self.interrupt = asyncio.Event()
        self.received: deque[dict[str, Any]] = deque(maxlen=RECEIVED_LOG_SIZE)
        self.current_client_id: str | None = None
        self.last_node_id: str | None = None
        self.unavailable_until = 0.0
        self.started_at = time.time()
        self._generation = 0
        self._worker: asyncio.Task[None] | None = None
        self.executor = Executor(
            registry=self.registry,
            cache=self.cache,
            emit=self.emit,
            interrupt=self.interrupt,
            output_dir=folders.output,
            temp_dir=folders.temp,
            input_dir=folders.input,
            node_delay=self._node_delay,
            take_node_error=self._take_node_error,
            on_node_start=self._on_node_start,
        )

    def folder_files(self) -> dict[str, list[str]]:
        """The files a combo may name, by folder: the installed models plus the images in
        ``input/`` (what LoadImage offers), listed afresh as ComfyUI does for every request."""
        return {**self.models, "input": input_images(self.folders.input)}

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._worker = asyncio.create_task(self._work(self._generation), name="comfyui-sim-worker")

    async def stop(self) -> None:
        self._generation += 1
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        await self.hub.close_all(CLOSE_GOING_AWAY)

    async def restart(self, downtime_seconds: float = 0.0) -> dict[str, Any]:
        """What a ComfyUI restart does: queue, history and cache gone, sockets closed, the
        running prompt abandoned (it never reaches history), numbering starts over."""
        abandoned = self.queue.running.prompt_id if self.queue.running else None
        dropped = [item.prompt_id for item in self.queue.pending()]
        if self._worker is not None:
            self._generation += 1
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self.queue.reset()
        self.history.clear()
        self.cache.clear()
        self.interrupt.clear()
        self.current_client_id = None
        self.last_node_id = None
        self.unavailable_until = time.monotonic() + downtime_seconds
        closed = await self.hub.close_all(CLOSE_SERVICE_RESTART)
        self.start()
        log.info("simulated restart: abandoned %s, dropped %d pending", abandoned, len(dropped))
        return {
            "abandoned": abandoned,
            "dropped_pending": dropped,
            "closed_websockets": closed,
            "downtime_seconds": downtime_seconds,
        }

    def unavailable(self) -> bool:
        return time.monotonic() < self.unavailable_until

    # --- messages ------------------------------------------------------------------------------

    async def emit(self, event: str, data: Any, sid: str | None) -> None:
        """Every message about prompts goes through here, so one fault can silence them all."""
        if self.faults.suppress_websocket_messages:
            return
        await self.hub.send(event, data, sid)

    def queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.queue.remaining()}}

    async def broadcast_status(self) -> None:
        await self.emit("status", {"status": self.queue_info()}, None)

    # --- faults --------------------------------------------------------------------------------

    async def update_faults(self, update: FaultsUpdate) -> dict[str, Any]:
        self.faults = update.apply(self.faults)
        result: dict[str, Any] = {"faults": self.faults.model_dump()}
        if update.drop_websockets:
            result["closed_websockets"] = await self.hub.close_all(CLOSE_GOING_AWAY)
        return result

    def _node_delay(self) -> float:
        if self.faults.node_delay_seconds is not None:
            return self.faults.node_delay_seconds
        return self.settings.node_delay_seconds

    def _take_node_error(self, class_type: str) -> NodeErrorFault | None:
        fault = self.faults.node_error
        if fault is None or fault.class_type != class_type:
            return None
        if fault.times is not None:
            remaining = fault.times - 1
            next_fault = fault.model_copy(update={"times": remaining}) if remaining else None
            self.faults = self.faults.model_copy(update={"node_error": next_fault})
        return fault

    def _on_node_start(self, node_id: str) -> None:
        self.last_node_id = node_id

    # --- prompts -------------------------------------------------------------------------------

    def _record(self, prompt_id: str | None, client_id: Any, number: Any, status: int) -> None:
        self.received.append(
            {
                "prompt_id": prompt_id,
                "client_id": client_id,
                "number": number,
                "status_code": status,
                "accepted": status == 200,
                "received_at": now_ms(),
            }
        )

    def record_rejection(self, body: Any, status: int) -> None:
        body = body if isinstance(body, dict) else {}
        prompt_id = body.get("prompt_id")
        self._record(
            str(prompt_id) if prompt_id is not None else None, body.get("client_id"), None, status
        )

    async def submit(self, body: Any) -> Submission:
        """POST /prompt, after the body parsed as JSON. Raises ValueError/TypeError on bodies
        ComfyUI would crash on (the route turns those into its plain-text 500)."""
        data: dict[str, Any] = body if isinstance(body, dict) else {}
        number: int | float
        if "number" in data:
            number = float(data["number"])
        else:
            number = self.queue.take_number()
            if data.get("front"):
                number = -number
        if "prompt" not in data:
            return Submission(
                400,
                {
                    "error": {
                        "type": "no_prompt",
                        "message": "No prompt provided",
                        "details": "No prompt provided",
                        "extra_info": {},
                    },
                    "node_errors": {},
                },
            )
        prompt = data["prompt"]
        raw_id = data.get("prompt_id")
        prompt_id = str(raw_id) if raw_id is not None else str(uuid.uuid4())
        validation = validate_prompt(prompt, self.registry, self.folder_files())
        extra_data = data.get("extra_data", {})
        if not isinstance(extra_data, dict):
            raise TypeError("extra_data must be an object")
        extra_data = dict(extra_data)
        if "client_id" in data:
            extra_data["client_id"] = data["client_id"]
        if not validation.ok:
            self._record(prompt_id, data.get("client_id"), number, 400)
            log.warning("invalid prompt %s: %s", prompt_id, validation.error)
            return Submission(
                400, {"error": validation.error, "node_errors": validation.node_errors}
            )
        # ComfyUI 0.3.64 keeps no create_time in extra_data: queue and history items lack it.
        sensitive = {k: extra_data.pop(k) for k in SENSITIVE_EXTRA_DATA_KEYS if k in extra_data}
        item = QueueItem(
            number=number,
            prompt_id=prompt_id,
            prompt=prompt,
            extra_data=extra_data,
            outputs_to_execute=validation.outputs,
            sensitive=sensitive,
        )
        self._record(prompt_id, data.get("client_id"), number, 200)
        self.queue.put(item)
        await self.broadcast_status()
        return Submission(
            200,
            {"prompt_id": prompt_id, "number": number, "node_errors": validation.node_errors},
        )

    async def delete_queued(self, prompt_ids: list[Any]) -> None:
        for prompt_id in prompt_ids:
            self.queue.delete(str(prompt_id))
        await self.broadcast_status()

    async def clear_queue(self) -> None:
        self.queue.wipe()
        await self.broadcast_status()

    def interrupt_running(self, prompt_id: str | None) -> bool:
        running = self.queue.running
        if running is None:
            return False
        if prompt_id and running.prompt_id != prompt_id:
            log.info("prompt %s is not running, not interrupting", prompt_id)
            return False
        self.interrupt.set()
        return True

    # --- the worker ----------------------------------------------------------------------------

    async def _work(self, generation: int) -> None:
        while generation == self._generation:
            item = await self.queue.get()
            await self.broadcast_status()
            self.current_client_id = item.client_id
            try:
                outcome = await self.executor.run(item)
            except asyncio.CancelledError:
                raise
            except Exception as ex:
                # A simulator bug must not kill the worker nor leave the prompt hanging.
                log.exception("simulator failure while running %s", item.prompt_id)
                outcome = RunOutcome(
                    success=False,
                    outputs={},
                    meta={},
                    messages=[
                        [
                            "execution_error",
                            {
                                "prompt_id": item.prompt_id,
                                "exception_message": f"simulator failure: {ex!r}",
                                "timestamp": now_ms(),
                            },
                        ]
                    ],
                )
            if generation != self._generation:
                return
            self._finish(item, outcome)
            await self.broadcast_status()
            if item.client_id is not None:
                await self.emit(
                    "executing", {"node": None, "prompt_id": item.prompt_id}, item.client_id
                )
            self.current_client_id = None
            self.last_node_id = None

    def _finish(self, item: QueueItem, outcome: RunOutcome) -> None:
        self.queue.done()
        entry = {
            "prompt": item.public(),
            "outputs": outcome.outputs,
            "status": {
                "status_str": "success" if outcome.success else "error",
                "completed": outcome.success,
                "messages": outcome.messages,
            },
            "meta": outcome.meta,
        }
        self.history.add(item.prompt_id, entry, delay_seconds=self.faults.history_delay_seconds)
