"""The ComfyUI backends this pipeline drives: their health, their queues, and a bound on runs in
flight per backend so the backlog waits in JetStream rather than inside ComfyUI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiln_common.periodic import run_periodically

from kiln_pipeline.capabilities import NodeCatalogue
from kiln_pipeline.comfy import BackendUnavailableError, ComfyClient
from kiln_pipeline.watcher import BackendWatcher

logger = logging.getLogger("kiln.pipeline.pool")


class NoHealthyBackendError(Exception):
    """No backend answered with a free slot before the caller's deadline."""


@dataclass
class Backend:
    client: ComfyClient
    watcher: BackendWatcher
    client_id: str
    max_in_flight: int
    in_flight: int = 0
    healthy: bool = True
    # Prompts in the backend's queue that are not ours (other clients, other replicas), as of
    # the last health check: a busy shared backend is avoided even when kiln sent it nothing.
    foreign_queue: int = 0
    queue_remaining: int = 0
    last_error: str | None = None
    checked_at: float | None = None
    # The /object_info of the node classes kiln's workflows use, as of the last health check
    # that could read it; None until read (then nothing is known to be missing).
    nodes: NodeCatalogue | None = None
    nodes_error: str | None = None

    @property
    def name(self) -> str:
        return self.client.name

    @property
    def url(self) -> str:
        return self.client.url

    @property
    def load(self) -> int:
        return self.in_flight + self.foreign_queue

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "healthy": self.healthy,
            "websocket": "connected" if self.watcher.connected.is_set() else "disconnected",
            "queue_remaining": self.queue_remaining,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "last_error": self.last_error,
            "checked_seconds_ago": (
                round(time.monotonic() - self.checked_at, 1) if self.checked_at else None
            ),
            "object_info_error": self.nodes_error,
        }


@dataclass
class BackendPool:
    backends: list[Backend]
    check_timeout_seconds: float = 5.0
    # Node classes whose /object_info every health check reads (those kiln's workflows use).
    node_classes: frozenset[str] = frozenset()
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _health_task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        if not self.backends:
            raise ValueError("at least one ComfyUI backend is needed")

    @property
    def capacity(self) -> int:
        return sum(b.max_in_flight for b in self.backends)

    def get(self, name: str) -> Backend | None:
        return next((b for b in self.backends if b.name == name), None)

    async def acquire(
        self,
        deadline: float,
        avoid: frozenset[str] = frozenset(),
        can_run: Callable[[Backend], bool] | None = None,
    ) -> Backend:
        """The healthy backend with the shortest queue and a free slot (and, given
        ``can_run``, one that can run the run's graph).

        Waits while every healthy backend is full or none is healthy; backends named in
        ``avoid`` are used only when no other one is available. Raises NoHealthyBackendError at
        ``deadline`` (a ``time.monotonic()`` value).
        """
        async with self._changed:
            while True:
                free = [
                    b
                    for b in self.backends
                    if b.healthy
                    and b.in_flight < b.max_in_flight
                    and (can_run is None or can_run(b))
                ]
                preferred = [b for b in free if b.name not in avoid] or free
                if preferred:
                    chosen = min(preferred, key=lambda b: b.load)
                    chosen.in_flight += 1
                    return chosen
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise NoHealthyBackendError(self._why_none())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=remaining)

    def _why_none(self) -> str:
        def state(b: Backend) -> str:
            if not b.healthy:
                return b.last_error or "unhealthy"
            return "full" if b.in_flight >= b.max_in_flight else "cannot run this graph"

        states = [f"{b.name}: {state(b)}" for b in self.backends]
        return "no ComfyUI backend available (" + "; ".join(states) + ")"

    async def release(self, backend: Backend) -> None:
        async with self._changed:
            backend.in_flight -= 1
            self._changed.notify_all()

    async def mark_unhealthy(self, backend: Backend, reason: str) -> None:
        """Take a backend out of rotation until a health check finds it answering again."""
        async with self._changed:
            if backend.healthy:
                logger.warning("%s out of rotation: %s", backend.name, reason)
            backend.healthy = False
            backend.last_error = reason[:300]
            self._changed.notify_all()

    async def check(self, backend: Backend) -> None:
        try:
            queued = await backend.client.queue_remaining(within_seconds=self.check_timeout_seconds)
        except BackendUnavailableError as exc:
            await self.mark_unhealthy(backend, str(exc))
        else:
            async with self._changed:
                if not backend.healthy:
                    logger.info("%s back in rotation", backend.name)
                backend.healthy = True
                backend.last_error = None
                backend.queue_remaining = queued
                backend.foreign_queue = max(0, queued - backend.in_flight)
                self._changed.notify_all()
            await self.read_nodes(backend)
        backend.checked_at = time.monotonic()

    async def read_nodes(self, backend: Backend) -> None:
        """Refresh what the backend has of the node classes kiln uses. A failed read keeps
        the last catalogue (the backend answered its queue, so it stays in rotation) and
        shows the error at /system."""
        if not self.node_classes:
            return
        try:
            nodes = await backend.client.node_info(
                self.node_classes, within_seconds=self.check_timeout_seconds
            )
        except BackendUnavailableError as exc:
            if backend.nodes_error is None:
                logger.warning("could not read %s's node classes: %s", backend.name, exc)
            backend.nodes_error = str(exc)[:300]
            return
        async with self._changed:
            backend.nodes = nodes
            backend.nodes_error = None
            self._changed.notify_all()

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(b) for b in self.backends))

    def start_health_checks(self, interval_seconds: float) -> None:
        # Guarded: one round that raises (a malformed answer, a bug) is logged and the next
        # round runs; an unguarded loop would end health checks silently, for good.
        self._health_task = asyncio.create_task(
            run_periodically(
                "backend health check", interval_seconds, self.check_all, logger, wait_first=True
            ),
            name="backend-health",
        )

    async def stop(self) -> None:
        if self._health_task:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
