"""Limits that keep one room of children from starving another: runs per device per minute,
a global queue-depth ceiling, and a request body size cap."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque

from kiln_common.errors import error_response
from kiln_common.metrics import QUEUE_DEPTH
from kiln_contracts.subjects import RUNS_STREAM
from nats.js import JetStreamContext
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiln_gateway.errors import GatewayError, GatewayErrorCode

logger = logging.getLogger("kiln.gateway.limits")

WINDOW_SECONDS = 60.0


class DeviceRateLimiter:
    """Sliding window per device, in this replica's memory.

    Per replica on purpose: a shared counter would add a NATS round trip to every run; with N
    replicas behind a sticky-less balancer a device gets at most N times the limit.
    """

    def __init__(self, per_minute: int, max_devices: int = 100_000) -> None:
        self.per_minute = per_minute
        self.max_devices = max_devices
        self._hits: dict[str, deque[float]] = {}

    def check(self, device_id: str, now: float | None = None) -> None:
        now = now if now is not None else time.monotonic()
        hits = self._hits.setdefault(device_id, deque())
        while hits and now - hits[0] >= WINDOW_SECONDS:
            hits.popleft()
        if len(hits) >= self.per_minute:
            retry_after = max(1, math.ceil(WINDOW_SECONDS - (now - hits[0])))
            raise GatewayError(
                GatewayErrorCode.RATE_LIMITED,
                f"at most {self.per_minute} runs per minute from one device; "
                f"try again in {retry_after} s",
                429,
                headers={"Retry-After": str(retry_after)},
            )
        hits.append(now)
        if len(self._hits) > self.max_devices:
            self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        for device, hits in list(self._hits.items()):
            if not hits or now - hits[-1] >= WINDOW_SECONDS:
                del self._hits[device]


class QueueDepthGuard:
    """Refuses new runs while the pipeline's work queue is too deep.

    Depth = requested runs not yet delivered + delivered but not yet acknowledged, read from the
    pipeline's durable consumer and cached briefly so a burst costs one NATS call.
    """

    def __init__(
        self, js: JetStreamContext, consumer: str, limit: int, cache_seconds: float = 0.25
    ) -> None:
        self.js = js
        self.consumer = consumer
        self.limit = limit
        self.cache_seconds = cache_seconds
        self._depth = 0
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def depth(self) -> int:
        async with self._lock:
            if time.monotonic() - self._read_at > self.cache_seconds:
                info = await self.js.consumer_info(RUNS_STREAM, self.consumer)
                self._depth = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
                self._read_at = time.monotonic()
                QUEUE_DEPTH.set(self._depth)
            return self._depth

    async def check(self) -> None:
        try:
            depth = await self.depth()
        except Exception as exc:  # noqa: BLE001 - an unknown depth must not block runs
            # Before the pipeline's first start its consumer does not exist; NATS being down
            # surfaces as a 503 when the run is queued.
            logger.warning("queue depth unknown: %s", exc)
            return
        if depth >= self.limit:
            raise GatewayError(
                GatewayErrorCode.QUEUE_FULL,
                f"{depth} runs are waiting; the limit is {self.limit}. Try again shortly.",
                429,
                headers={"Retry-After": "5"},
            )


class BodySizeLimit:
    """413 for bodies above the limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> GatewayError:
        return GatewayError(
            GatewayErrorCode.PAYLOAD_TOO_LARGE,
            f"request body is larger than {self.max_bytes} bytes",
            413,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(scope, receive, send)
                return
        received = 0
        started = False
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not started:
                    # Answer 413 now; the app sees the client go away and stops reading.
                    rejected = True
                    await self._reject(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return  # the 413 already went out
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = self._too_large()
        response = error_response(error.status_code, error.code, error.detail)
        await response(scope, receive, send)
