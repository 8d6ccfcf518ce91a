"""The prompt queue and the history, in memory, as ComfyUI keeps them."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

# Extra-data keys ComfyUI keeps out of the queue and history listings.
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


@dataclass
class QueueItem:
    number: int | float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs_to_execute: list[str]
    sensitive: dict[str, Any] = field(default_factory=dict)

    @property
    def client_id(self) -> str | None:
        client_id = self.extra_data.get("client_id")
        return client_id if isinstance(client_id, str) and client_id else None

    def public(self) -> list[Any]:
        """``[number, prompt_id, prompt, extra_data, outputs_to_execute]`` as /queue shows it."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs_to_execute]


class PromptQueue:
    """Pending prompts ordered by ``number`` (FIFO; ``front`` makes it negative), one running."""

    def __init__(self) -> None:
        self._pending: list[tuple[int | float, int, QueueItem]] = []
        self._sequence = itertools.count()
        self._wakeup = asyncio.Event()
        self.running: QueueItem | None = None
        self.next_number = 0

    def take_number(self) -> int:
        number = self.next_number
        self.next_number += 1
        return number

    def put(self, item: QueueItem) -> None:
        heapq.heappush(self._pending, (item.number, next(self._sequence), item))
        self._wakeup.set()

    async def get(self) -> QueueItem:
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()
        _, _, item = heapq.heappop(self._pending)
        self.running = item
        return item

    def done(self) -> None:
        self.running = None

    def pending(self) -> list[QueueItem]:
        return [entry[2] for entry in sorted(self._pending, key=lambda e: (e[0], e[1]))]

    def remaining(self) -> int:
        return len(self._pending) + (1 if self.running is not None else 0)

    def delete(self, prompt_id: str) -> bool:
        for index, entry in enumerate(self._pending):
            if entry[2].prompt_id == prompt_id:
                self._pending.pop(index)
                heapq.heapify(self._pending)
                return True
        return False

    def wipe(self) -> None:
        self._pending.clear()

    def reset(self) -> None:
        """A restart: nothing pending, nothing running, numbering starts over."""
        self._pending.clear()
        self.running = None
        self.next_number = 0


class History:
    """Finished prompts by id, oldest first, at most ``max_items`` (ComfyUI keeps 10 000).

    An entry can be hidden until a moment in the future (the ``history_delay_seconds`` fault).
    """

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._entries: dict[str, dict[str, Any]] = {}
        self._visible_at: dict[str, float] = {}

    def add(self, prompt_id: str, entry: dict[str, Any], delay_seconds: float = 0.0) -> None:
        self._entries.pop(prompt_id, None)
        while len(self._entries) >= self.max_items:
            oldest = next(iter(self._entries))
            del self._entries[oldest]
            self._visible_at.pop(oldest, None)
        self._entries[prompt_id] = entry
        if delay_seconds > 0:
            self._visible_at[prompt_id] = time.monotonic() + delay_seconds
        else:
            self._visible_at.pop(prompt_id, None)

    def _visible(self, prompt_id: str, now: float) -> bool:
        return self._visible_at.get(prompt_id, 0.0) <= now

    def get(self, prompt_id: str) -> dict[str, Any]:
        if prompt_id in self._entries and self._visible(prompt_id, time.monotonic()):
            return {prompt_id: self._entries[prompt_id]}
        return {}

    def get_all(self, max_items: int | None = None, offset: int = -1) -> dict[str, Any]:
        now = time.monotonic()
        visible = [(k, v) for k, v in self._entries.items() if self._visible(k, now)]
        if offset < 0 and max_items is not None:
            offset = len(visible) - max_items
        out: dict[str, Any] = {}
        for index, (key, value) in enumerate(visible):
            if index < offset:
                continue
            out[key] = value
            if max_items is not None and len(out) >= max_items:
                break
        return out

    def delete(self, prompt_id: str) -> None:
        self._entries.pop(prompt_id, None)
        self._visible_at.pop(prompt_id, None)

    def clear(self) -> None:
        self._entries.clear()
        self._visible_at.clear()

    def __len__(self) -> int:
        return len(self._entries)
