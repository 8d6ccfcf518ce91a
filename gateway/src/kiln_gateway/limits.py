"""Limits that keep one room of children from starving another: runs per device per minute,
a global queue-depth ceiling, and a request body size cap."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time

from kiln_common.errors import error_response
from kiln_common.metrics import QUEUE_DEPTH
from kiln_contracts.subjects import RUNS_STREAM
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiln_gateway.errors import GatewayError, GatewayErrorCode

logger = logging.getLogger("kiln.gateway.limits")

WINDOW_SECONDS = 60.0
RATE_BUCKET = "kiln_rate"


class DeviceRateLimiter:
    """Runs per device per minute, counted in a NATS KV bucket so the limit holds across gateway
    replicas (a child's browser is not pinned to one). Fixed one-minute windows, one key per
    device and window, updated with compare-and-set; keys expire with the bucket's max age.
    """

    def __init__(self, kv: KeyValue, per_minute: int) -> None:
        self.kv = kv
        self.per_minute = per_minute

    @classmethod
    async def open(cls, js: JetStreamContext, per_minute: int) -> DeviceRateLimiter:
        try:
            kv = await js.key_value(RATE_BUCKET)
        except BucketNotFoundError:
            kv = await js.create_key_value(
                KeyValueConfig(
                    bucket=RATE_BUCKET,
                    history=1,
                    ttl=WINDOW_SECONDS * 2,
                    storage=StorageType.MEMORY,  # losing counts on a NATS restart is harmless
                )
            )
        return cls(kv, per_minute)

    def _refuse(self, now: float) -> GatewayError:
        retry_after = max(1, math.ceil(WINDOW_SECONDS - now % WINDOW_SECONDS))
        return GatewayError(
            GatewayErrorCode.RATE_LIMITED,
            f"at most {self.per_minute} runs per minute from one device; "
            f"try again in {retry_after} s",
            429,
            headers={"Retry-After": str(retry_after)},
        )

    async def check(self, device_id: str, now: float | None = None) -> None:
        now = now if now is not None else time.time()
        digest = hashlib.sha256(device_id.encode()).hexdigest()[:32]
        key = f"r.{digest}.{int(now // WINDOW_SECONDS)}"
        try:
            for _ in range(8):  # compare-and-set; retried when another request won the race
                counted = await self._count(key)
                if counted is not None:
                    break
            else:
                counted = False  # this device is racing itself hard: that is over the limit
        except Exception as exc:  # noqa: BLE001 - an unknown count must not block runs
            # NATS being down surfaces as a 503 when the run is queued.
            logger.warning("rate limit not checked: %s", exc)
            return
        if not counted:
            raise self._refuse(now)

    async def _count(self, key: str) -> bool | None:
        """True: counted. False: the window is full. None: lost a race, try again."""
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            count, revision = 0, None
        else:
            count, revision = int(entry.value or b"0"), entry.revision
        if count >= self.per_minute:
            return False
        try:
            if revision is None:
                await self.kv.create(key, b"1")
            else:
                await self.kv.update(key, str(count + 1).encode(), last=revision)
        except KeyWrongLastSequenceError:
            return None
        return True


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
