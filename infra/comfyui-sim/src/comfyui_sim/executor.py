"""Runs one prompt the way ComfyUI's ``PromptExecutor`` does, message for message."""

from __future__ import annotations

import asyncio
import math
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from comfyui_sim.faults import NodeErrorFault
from comfyui_sim.graph import full_type_name, is_link, node_inputs, node_signatures, plan_execution
from comfyui_sim.media import Audio, Video
from comfyui_sim.nodes import NodeContext, NodeDef, NodeResult
from comfyui_sim.state import QueueItem

Emit = Callable[[str, Any, str | None], Awaitable[None]]
MAX_PROGRESS_STEPS = 10
PROGRESS_STEP_SECONDS = 0.05


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class CacheEntry:
    outputs: tuple[Any, ...]
    ui: dict[str, list[Any]] | None


class OutputCache:
    """ComfyUI's classic cache: node outputs by input signature, kept for the latest prompt only.

    Re-submitting an identical graph therefore runs nothing and reports the previous files.
    """

    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}

    def retain(self, keys: Iterable[str]) -> None:
        keep = set(keys)
        self._entries = {k: v for k, v in self._entries.items() if k in keep}

    def get(self, key: str) -> CacheEntry | None:
        return self._entries.get(key)

    def set(self, key: str, entry: CacheEntry) -> None:
        self._entries[key] = entry

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class RunOutcome:
    success: bool
    outputs: dict[str, Any]
    meta: dict[str, Any]
    messages: list[list[Any]]


class Interrupted(Exception):
    """The running prompt was interrupted (ComfyUI's ``InterruptProcessingException``)."""

    def __init__(self, node_id: str) -> None:
        super().__init__(f"interrupted at node {node_id}")
        self.node_id = node_id


class SimulatedNodeError(RuntimeError):
    """Raised by a node when the ``node_error`` fault names its class."""

    def __init__(self, message: str, reported_type: str) -> None:
        super().__init__(message)
        self.reported_type = reported_type


class NodeFailure(Exception):
    def __init__(self, node_id: str, details: dict[str, Any]) -> None:
        super().__init__(details.get("exception_message", ""))
        self.node_id = node_id
        self.details = details


def _format_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], Image.Image):
        width, height = value[0].size
        return f"IMAGE batch of {len(value)}, {width}x{height}"
    if isinstance(value, Audio):
        return f"AUDIO {value.channels}ch {value.sample_rate} Hz, {value.samples()} samples"
    if isinstance(value, Video):
        return f"VIDEO {len(value.frames)} frames at {value.frame_rate} fps"
    return str(value)


@dataclass
class _Progress:
    """ComfyUI's per-prompt progress registry, sent as ``progress_state`` messages."""

    prompt_id: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def set(self, node_id: str, value: float, maximum: float, state: str) -> dict[str, Any]:
        self.nodes[node_id] = {"value": value, "max": maximum, "state": state}
        return self.message()

    def message(self) -> dict[str, Any]:
        return {
            "prompt_id": self.prompt_id,
            "nodes": {
                node_id: {
                    **state,
                    "node_id": node_id,
                    "prompt_id": self.prompt_id,
                    "display_node_id": node_id,
                    "parent_node_id": None,
                    "real_node_id": node_id,
                }
                for node_id, state in self.nodes.items()
            },
        }


class Executor:
    def __init__(
        self,
        *,
        registry: dict[str, NodeDef],
        cache: OutputCache,
        emit: Emit,
        interrupt: asyncio.Event,
        output_dir: Path,
        temp_dir: Path,
        input_dir: Path,
        node_delay: Callable[[], float],
        take_node_error: Callable[[str], NodeErrorFault | None],
        on_node_start: Callable[[str], None],
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.emit = emit
        self.interrupt = interrupt
        self.output_dir = output_dir
        self.temp_dir = temp_dir
        self.input_dir = input_dir
        self.node_delay = node_delay
        self.take_node_error = take_node_error
        self.on_node_start = on_node_start

    async def run(self, item: QueueItem) -> RunOutcome:
        prompt_id = item.prompt_id
        prompt = item.prompt
        client_id = item.client_id
        messages: list[list[Any]] = []
        self.interrupt.clear()

        async def add_message(event: str, data: dict[str, Any], broadcast: bool) -> None:
            stamped = {**data, "timestamp": now_ms()}
            messages.append([event, stamped])
            if client_id is not None or broadcast:
                await self.emit(event, stamped, client_id)

        await add_message("execution_start", {"prompt_id": prompt_id}, broadcast=False)
        signatures = node_signatures(prompt)
        self.cache.retain(signatures.values())
        cached_nodes = [n for n in prompt if self.cache.get(signatures[n]) is not None]
        await add_message(
            "execution_cached", {"nodes": cached_nodes, "prompt_id": prompt_id}, broadcast=False
        )
        plan = plan_execution(
            prompt,
            item.outputs_to_execute,
            lambda node_id: self.cache.get(signatures[node_id]) is not None,
        )
        progress = _Progress(prompt_id)
        executed: list[str] = []
        success = True
        for node_id in plan:
            try:
                await self._run_node(item, node_id, signatures, executed, progress)
            except Interrupted as stop:
                success = False
                await add_message(
                    "execution_interrupted",
                    {
                        "prompt_id": prompt_id,
                        "node_id": stop.node_id,
                        "node_type": prompt[stop.node_id]["class_type"],
                        "executed": list(executed),
                    },
                    broadcast=True,
                )
                break
            except NodeFailure as failure:
                success = False
                await add_message(
                    "execution_error",
                    {
                        "prompt_id": prompt_id,
                        "node_id": failure.node_id,
                        "node_type": prompt[failure.node_id]["class_type"],
                        "executed": list(executed),
                        **failure.details,
                        "current_outputs": list(cached_nodes),
                    },
                    broadcast=False,
                )
                break
        else:
            await add_message("execution_success", {"prompt_id": prompt_id}, broadcast=False)

        outputs: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for node_id in prompt:
            entry = self.cache.get(signatures[node_id])
            if entry is not None and entry.ui:
                outputs[node_id] = entry.ui
                meta[node_id] = {
                    "node_id": node_id,
                    "display_node": node_id,
                    "parent_node": None,
                    "real_node_id": node_id,
                }
        return RunOutcome(success=success, outputs=outputs, meta=meta, messages=messages)

    async def _run_node(
        self,
        item: QueueItem,
        node_id: str,
        signatures: dict[str, str],
        executed: list[str],
        progress: _Progress,
    ) -> None:
        prompt_id = item.prompt_id
        client_id = item.client_id
        node = item.prompt[node_id]
        node_def = self.registry[node["class_type"]]
        signature = signatures[node_id]

        cached = self.cache.get(signature)
        if cached is not None:
            if client_id is not None:
                await self.emit(
                    "executed",
                    {
                        "node": node_id,
                        "display_node": node_id,
                        "output": cached.ui,
                        "prompt_id": prompt_id,
                    },
                    client_id,
                )
            await self.emit(
                "progress_state", progress.set(node_id, 1.0, 1.0, "finished"), client_id
            )
            return

        captured: dict[str, Any] = {}
        try:
            result = await self._execute(item, node_id, node_def, signatures, progress, captured)
        except Interrupted:
            raise
        except Exception as ex:
            # A node may raise anything; ComfyUI reports it as execution_error.
            reported = (
                ex.reported_type if isinstance(ex, SimulatedNodeError) else full_type_name(type(ex))
            )
            raise NodeFailure(
                node_id,
                {
                    "exception_message": f"{ex}\n",
                    "exception_type": reported,
                    "traceback": traceback.format_tb(ex.__traceback__),
                    "current_inputs": {
                        name: [_format_value(value)] for name, value in captured.items()
                    },
                },
            ) from ex

        if result.ui and client_id is not None:
            await self.emit(
                "executed",
                {
                    "node": node_id,
                    "display_node": node_id,
                    "output": result.ui,
                    "prompt_id": prompt_id,
                },
                client_id,
            )
        self.cache.set(signature, CacheEntry(outputs=result.outputs, ui=result.ui))
        await self.emit("progress_state", progress.set(node_id, 1.0, 1.0, "finished"), client_id)
        executed.append(node_id)

    async def _execute(
        self,
        item: QueueItem,
        node_id: str,
        node_def: NodeDef,
        signatures: dict[str, str],
        progress: _Progress,
        captured: dict[str, Any],
    ) -> NodeResult:
        """progress_state → executing → (interrupt check) → delay → fault → the node itself.

        As in ComfyUI, the interrupt flag is checked once, before the node's function runs; a
        node that has started runs to its end unless it is ``interruptible`` (a sampler).
        """
        prompt_id = item.prompt_id
        client_id = item.client_id
        # ComfyUI's progress registry announces the node before the server says `executing`.
        await self.emit("progress_state", progress.set(node_id, 0.0, 1.0, "running"), client_id)
        if client_id is not None:
            await self.emit(
                "executing",
                {"node": node_id, "display_node": node_id, "prompt_id": prompt_id},
                client_id,
            )
        self.on_node_start(node_id)
        captured.update(self._resolve_inputs(item, node_id, signatures))
        if self.interrupt.is_set():
            raise Interrupted(node_id)
        await self._slow_down(node_id, node_def, prompt_id, client_id, progress)
        fault = self.take_node_error(node_def.class_type)
        if fault is not None:
            raise SimulatedNodeError(fault.message, fault.exception_type)
        context = NodeContext(
            node_id=node_id,
            output_dir=self.output_dir,
            temp_dir=self.temp_dir,
            input_dir=self.input_dir,
            prompt=item.prompt,
            extra_pnginfo=_extra_pnginfo(item.extra_data),
        )
        return await asyncio.to_thread(node_def.function, context, dict(captured))

    def _resolve_inputs(
        self, item: QueueItem, node_id: str, signatures: dict[str, str]
    ) -> dict[str, Any]:
        resolved: dict[str, Any] = {}
        for name, value in node_inputs(item.prompt[node_id]).items():
            if is_link(value):
                entry = self.cache.get(signatures[value[0]])
                if entry is None:
                    raise RuntimeError(
                        f"Input {name} of node {node_id}: node {value[0]} has no output"
                    )
                resolved[name] = entry.outputs[int(value[1])]
            else:
                resolved[name] = value
        return resolved

    async def _slow_down(
        self,
        node_id: str,
        node_def: NodeDef,
        prompt_id: str,
        client_id: str | None,
        progress: _Progress,
    ) -> None:
        """Sleep the node delay in a few steps, reporting progress (float values, as ComfyUI
        sends them). Only an ``interruptible`` node stops at a step when interrupted; any other
        node finishes and the interrupt takes effect before the next node."""
        delay = self.node_delay()
        if delay <= 0:
            return
        steps = max(1, min(MAX_PROGRESS_STEPS, math.ceil(delay / PROGRESS_STEP_SECONDS)))
        for step in range(1, steps + 1):
            if node_def.interruptible:
                try:
                    await asyncio.wait_for(self.interrupt.wait(), timeout=delay / steps)
                except TimeoutError:
                    pass
                else:
                    raise Interrupted(node_id)
            else:
                await asyncio.sleep(delay / steps)
            value, maximum = float(step), float(steps)
            await self.emit(
                "progress",
                {"value": value, "max": maximum, "prompt_id": prompt_id, "node": node_id},
                client_id,
            )
            await self.emit(
                "progress_state", progress.set(node_id, value, maximum, "running"), client_id
            )


def _extra_pnginfo(extra_data: dict[str, Any]) -> dict[str, Any] | None:
    value = extra_data.get("extra_pnginfo")
    return value if isinstance(value, dict) else None
