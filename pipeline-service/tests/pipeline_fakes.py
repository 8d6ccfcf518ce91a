"""Fakes behind the pipeline's ports for unit tests: a ComfyUI answering over an in-memory HTTP
transport, and a sink and cancel ledger that record what the driver reports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from kiln_contracts.events import (
    RunCancelled,
    RunCancelling,
    RunFailed,
    RunGenerated,
    RunMessage,
    RunProgress,
    RunResubmitted,
    RunStarted,
    RunTextStage,
)

EventT = TypeVar("EventT", bound=RunMessage)


@dataclass
class FakeComfy:
    """A ComfyUI whose prompts finish when the test says so."""

    queued: list[str] = field(default_factory=list)
    pending: set[str] = field(default_factory=set)  # of ``queued``: those not running yet
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    submitted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    down: bool = False
    finish_on_submit: bool = True
    forget_on_submit: bool = False  # a restart right after each submission
    # What POST /interrupt does to the running prompt: "interrupt" (ComfyUI between nodes:
    # history says execution_interrupted) or "finish" (it is in its last node: it completes).
    on_interrupt: str = "interrupt"
    reject_with: dict[str, Any] | None = None  # POST /prompt answers 400 with this body
    # /object_info entries by class; None: the route is missing (404), as in a bare fake.
    object_info: dict[str, Any] | None = None
    queue_reads: int = 0
    _submission: asyncio.Event = field(default_factory=asyncio.Event)
    _request: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Until ``condition`` holds, checked after every request the fake answers."""
        while not condition():
            self._request.clear()
            await self._request.wait()

    async def wait_submissions(self, count: int) -> None:
        while len(self.submitted) < count:
            self._submission.clear()
            await self._submission.wait()

    def finish(self, prompt_id: str) -> None:
        if prompt_id in self.queued:
            self.queued.remove(prompt_id)
        self.history[prompt_id] = {
            "outputs": {
                "3": {
                    "images": [
                        {
                            "filename": "3_00001_.png",
                            "subfolder": f"kiln/{prompt_id}",
                            "type": "output",
                        }
                    ]
                }
            },
            "status": {"status_str": "success", "completed": True, "messages": []},
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._handle(request)
        finally:
            self._request.set()

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(503, text="down")
        path, method = request.url.path, request.method
        if path == "/prompt" and method == "POST":
            prompt_id = json.loads(request.content)["prompt_id"]
            self.submitted.append(prompt_id)
            self._submission.set()
            if self.reject_with is not None:
                return httpx.Response(400, json=self.reject_with)
            if self.forget_on_submit:
                return httpx.Response(200, json={"prompt_id": prompt_id, "number": 0})
            self.queued.append(prompt_id)
            if self.finish_on_submit:
                self.finish(prompt_id)
            return httpx.Response(200, json={"prompt_id": prompt_id, "number": 0})
        if path == "/prompt":
            return httpx.Response(200, json={"exec_info": {"queue_remaining": len(self.queued)}})
        if path == "/queue" and method == "GET":
            self.queue_reads += 1
            running = [[0, p, {}, {}, []] for p in self.queued if p not in self.pending]
            pending = [[0, p, {}, {}, []] for p in self.queued if p in self.pending]
            return httpx.Response(200, json={"queue_running": running, "queue_pending": pending})
        if path == "/queue":
            for prompt_id in json.loads(request.content).get("delete", []):
                self.deleted.append(prompt_id)
                # As in ComfyUI: only a prompt still pending is removed, never the running one.
                if prompt_id in self.queued and prompt_id in self.pending:
                    self.queued.remove(prompt_id)
                    self.pending.discard(prompt_id)
            return httpx.Response(200)
        if path == "/interrupt":
            prompt_id = json.loads(request.content)["prompt_id"]
            self.interrupted.append(prompt_id)
            if prompt_id in self.queued and self.on_interrupt == "interrupt":
                self.queued.remove(prompt_id)
                self.history[prompt_id] = {
                    "outputs": {},
                    "status": {
                        "status_str": "error",
                        "completed": False,
                        "messages": [
                            ["execution_interrupted", {"prompt_id": prompt_id, "node_id": "3"}]
                        ],
                    },
                }
            return httpx.Response(200)
        if path.startswith("/object_info/") and self.object_info is not None:
            node_class = path.removeprefix("/object_info/")
            info = self.object_info.get(node_class)
            return httpx.Response(200, json={node_class: info} if info else {})
        if path.startswith("/history/"):
            prompt_id = path.rsplit("/", 1)[1]
            entry = self.history.get(prompt_id)
            return httpx.Response(200, json={prompt_id: entry} if entry else {})
        return httpx.Response(404)


@dataclass
class RecordingSink:
    """Every event the driver published, in order; one list per event type to assert on."""

    published: list[RunMessage] = field(default_factory=list)
    progress_events: list[RunProgress] = field(default_factory=list)

    async def publish(self, event: RunMessage) -> None:
        self.published.append(event)

    async def progress(self, event: RunProgress) -> None:
        self.progress_events.append(event)

    def of_type(self, event_type: type[EventT]) -> list[EventT]:
        return [e for e in self.published if isinstance(e, event_type)]

    @property
    def text_stage_events(self) -> list[RunTextStage]:
        return self.of_type(RunTextStage)

    @property
    def started_events(self) -> list[RunStarted]:
        return self.of_type(RunStarted)

    @property
    def generated_events(self) -> list[RunGenerated]:
        return self.of_type(RunGenerated)

    @property
    def failed_events(self) -> list[RunFailed]:
        return self.of_type(RunFailed)

    @property
    def cancelled_events(self) -> list[RunCancelled]:
        return self.of_type(RunCancelled)

    @property
    def cancelling_events(self) -> list[RunCancelling]:
        return self.of_type(RunCancelling)

    @property
    def resubmitted_events(self) -> list[RunResubmitted]:
        return self.of_type(RunResubmitted)


@dataclass
class FakeLedger:
    cancelled: set[str] = field(default_factory=set)
    # Runs a cancel claimed while they waited in the backlog.
    claimed_by_cancel: set[str] = field(default_factory=set)
    taken: list[str] = field(default_factory=list)
    took: asyncio.Event = field(default_factory=asyncio.Event)

    async def take(self, run_id: str) -> bool:
        if run_id in self.claimed_by_cancel:
            return False
        self.taken.append(run_id)
        self.took.set()
        return True

    async def requested(self, run_id: str) -> bool:
        return run_id in self.cancelled
