"""The ComfyUI backends this pipeline drives, with a bound on runs in flight per backend so the
backlog waits in JetStream rather than inside ComfyUI."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from kiln_pipeline.comfy import ComfyClient
from kiln_pipeline.watcher import BackendWatcher


@dataclass
class Backend:
    client: ComfyClient
    watcher: BackendWatcher
    client_id: str
    max_in_flight: int
    in_flight: int = 0
    slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.max_in_flight)

    @property
    def name(self) -> str:
        return self.client.name

    @property
    def url(self) -> str:
        return self.client.url


class BackendPool:
    def __init__(self, backends: list[Backend]) -> None:
        if not backends:
            raise ValueError("at least one ComfyUI backend is needed")
        self.backends = backends
        self._changed = asyncio.Condition()

    @property
    def capacity(self) -> int:
        return sum(b.max_in_flight for b in self.backends)

    async def acquire(self) -> Backend:
        """The backend with the fewest runs in flight; waits while every backend is full."""
        async with self._changed:
            while True:
                free = [b for b in self.backends if b.in_flight < b.max_in_flight]
                if free:
                    chosen = min(free, key=lambda b: b.in_flight)
                    chosen.in_flight += 1
                    return chosen
                await self._changed.wait()

    async def release(self, backend: Backend) -> None:
        async with self._changed:
            backend.in_flight -= 1
            self._changed.notify_all()
