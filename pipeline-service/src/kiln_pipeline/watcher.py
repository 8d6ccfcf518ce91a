"""One long-lived websocket per backend, under a fixed client id, fanned out by prompt id.

ComfyUI never replays websocket messages, so this is only a fast signal: completion is always
confirmed through ``/history``, and the run driver polls when the socket is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import websockets

logger = logging.getLogger("kiln.pipeline.watcher")

Message = dict[str, Any]

# Put into every waiting run's queue when the socket drops, so its driver polls at once.
WEBSOCKET_LOST = "kiln.websocket_lost"


class BackendWatcher:
    def __init__(self, name: str, ws_url: str) -> None:
        self.name = name
        self.ws_url = ws_url
        self.connected = asyncio.Event()
        self._subscribers: dict[str, asyncio.Queue[Message]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watch-{self.name}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self, prompt_id: str) -> asyncio.Queue[Message]:
        queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=1000)
        self._subscribers[prompt_id] = queue
        return queue

    def unsubscribe(self, prompt_id: str) -> None:
        self._subscribers.pop(prompt_id, None)

    def _dispatch(self, message: Message) -> None:
        data = message.get("data")
        prompt_id = data.get("prompt_id") if isinstance(data, dict) else None
        queue = self._subscribers.get(prompt_id) if isinstance(prompt_id, str) else None
        if queue is None:
            return
        with contextlib.suppress(asyncio.QueueFull):
            # A full queue means the driver is behind; it confirms through /history anyway.
            queue.put_nowait(message)

    async def _run(self) -> None:
        delay = 0.2
        while True:
            try:
                async with websockets.connect(self.ws_url, max_size=None, open_timeout=5) as ws:
                    self.connected.set()
                    delay = 0.2
                    logger.info("websocket to %s connected", self.name)
                    async for raw in ws:
                        if isinstance(raw, bytes):
                            continue  # binary previews; kiln does not use them
                        try:
                            message = json.loads(raw)
                        except ValueError:
                            logger.warning("undecodable websocket message from %s", self.name)
                            continue
                        if isinstance(message, dict):
                            self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                if self.connected.is_set():
                    logger.warning("websocket to %s lost: %s", self.name, exc)
            self.connected.clear()
            # Wake every waiting run so it falls back to polling /history at once.
            for queue in list(self._subscribers.values()):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait({"type": WEBSOCKET_LOST, "data": {}})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
