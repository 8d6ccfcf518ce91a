"""NATS and JetStream adapters shared by the services: connecting, declaring the streams,
publishing events with the standard headers, and durable pull consumers that decode events
and hand each to the handler registered for its type."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import nats
import nats.errors
from kiln_contracts.events import Event, RunMessage, RunProgress, event_type_for
from kiln_contracts.subjects import (
    EXPORTS_STREAM,
    EXPORTS_STREAM_SUBJECTS,
    HEADER_MSG_ID,
    HEADER_REQUEST_ID,
    HEADER_RUN_ID,
    RUN_CLAIMS_BUCKET,
    RUNS_STREAM,
    RUNS_STREAM_SUBJECTS,
)
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from kiln_common.logging import current_request_id, run_context
from kiln_common.settings import KilnSettings

logger = logging.getLogger("kiln.nats")

# What a NATS or JetStream call raises when NATS is down, slow or refusing: every nats-py error
# (JetStream and KV errors derive from it), a timeout (nats-py sometimes raises the builtin) and a
# broken connection. Catch these, never Exception, where an outage is meant: anything else is a
# bug and must stay a logged 500, not look like "unavailable".
NATS_ERRORS: tuple[type[Exception], ...] = (nats.errors.Error, TimeoutError, ConnectionError)

STREAM_MAX_AGE_SECONDS = 7 * 24 * 3600
DUPLICATE_WINDOW_SECONDS = 120

# Which delivery of the message being handled this is (1 = the first), for handlers that act
# differently on a redelivery. Set by DurableConsumer around each handler call.
_delivery_attempt: ContextVar[int] = ContextVar("delivery_attempt", default=1)


def delivery_attempt() -> int:
    return _delivery_attempt.get()


async def connect(settings: KilnSettings, name: str) -> NatsClient:
    async def on_error(exc: Exception) -> None:
        logger.error("nats error: %s", exc)

    async def on_disconnected() -> None:
        logger.warning("nats disconnected")

    async def on_reconnected() -> None:
        logger.info("nats reconnected")

    return await nats.connect(
        settings.nats_url,
        name=name,
        connect_timeout=settings.nats_connect_timeout_seconds,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
    )


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Declare RUNS and EXPORTS; every service may call this, the result is the same."""
    for name, subjects in (
        (RUNS_STREAM, RUNS_STREAM_SUBJECTS),
        (EXPORTS_STREAM, EXPORTS_STREAM_SUBJECTS),
    ):
        config = StreamConfig(
            name=name,
            subjects=list(subjects),
            retention=RetentionPolicy.LIMITS,
            max_age=STREAM_MAX_AGE_SECONDS,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            num_replicas=replicas,
        )
        try:
            await js.stream_info(name)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)


async def run_claims(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    """The ``kiln_run_claims`` bucket (gateway and pipeline): one key per run, created once by
    whoever takes the run first — the pipeline to drive it, or a cancel of a run still waiting
    in RUNS. Kept as long as a request can wait in the stream."""
    try:
        return await js.key_value(RUN_CLAIMS_BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=RUN_CLAIMS_BUCKET,
                history=1,
                ttl=STREAM_MAX_AGE_SECONDS,
                storage=StorageType.FILE,
                replicas=replicas,
            )
        )


def event_headers(event: Event) -> dict[str, str]:
    """``Nats-Msg-Id`` (de-duplication), ``Run-Id`` on run events (log context on receipt) and
    the request id the event was caused by, when there is one."""
    headers = {HEADER_MSG_ID: event.msg_id}
    if isinstance(event, RunMessage):
        headers[HEADER_RUN_ID] = event.run_id
    request_id = current_request_id.get()
    if request_id:
        headers[HEADER_REQUEST_ID] = request_id
    return headers


async def publish(js: JetStreamContext, event: Event) -> None:
    """Publish to JetStream on the event's subject and wait for the ack; a repeat within the
    de-duplication window is dropped by NATS."""
    await js.publish(event.subject, event.model_dump_json().encode(), headers=event_headers(event))


async def publish_progress(nc: NatsClient, progress: RunProgress) -> None:
    """Core NATS, not JetStream: progress is ephemeral by design."""
    await nc.publish(
        progress.subject,
        progress.model_dump_json().encode(),
        headers={HEADER_RUN_ID: progress.run_id},
    )


class JetStreamPublisher:
    """The event-publishing port of every service, on JetStream."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def publish(self, event: Event) -> None:
        await publish(self.js, event)


# Handlers take the event type they are registered for; a table cannot say so per entry.
EventHandler = Callable[[Any], Awaitable[None]]
GiveUp = Callable[[Msg, BaseException], Awaitable[None]]


@dataclass
class DurableConsumer:
    """A durable pull consumer shared by every replica of a service (queue semantics).

    ``handlers`` maps each event type to its handler, e.g. ``{RunStarted: service.on_started}``;
    the consumer filters on exactly those types' subjects and hands each handler its decoded
    event. A handler acks nothing itself: returning means done (ack), raising means try again
    later (nak with a delay) until ``max_deliver``; then the message is terminated and
    ``on_give_up`` records the failure so it is never silent. A message that does not decode
    takes the same path.
    """

    js: JetStreamContext
    stream: str
    durable: str
    handlers: Mapping[type[Event], EventHandler]
    on_give_up: GiveUp
    concurrency: int = 8
    ack_wait_seconds: float = 30
    max_deliver: int = 5
    retry_delay_seconds: float = 1.0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _loop_task: asyncio.Task[None] | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        filters = self.filter_subjects
        if not filters or len(set(filters)) != len(filters):
            raise ValueError(f"consumer {self.durable}: one handler per event type, at least one")

    @property
    def filter_subjects(self) -> list[str]:
        return [event_type.subject_filter() for event_type in self.handlers]

    async def _dispatch(self, message: Msg) -> None:
        event_type = event_type_for(message.subject, self.handlers)
        if event_type is None:
            raise LookupError(f"no handler for {message.subject}")
        await self.handlers[event_type](event_type.model_validate_json(message.data))

    async def start(self) -> None:
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait_seconds,
            max_deliver=self.max_deliver,
            max_ack_pending=max(self.concurrency * 4, 64),
            filter_subjects=self.filter_subjects,
        )
        await self.js.add_consumer(self.stream, config)
        self._sub = await self.js.pull_subscribe_bind(self.durable, stream=self.stream)
        self._slots = asyncio.Semaphore(self.concurrency)
        self._loop_task = asyncio.create_task(self._loop(), name=f"consumer-{self.durable}")

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            free = self._slots._value
            if free == 0:
                await self._slots.acquire()
                self._slots.release()
                continue
            try:
                messages = await self._sub.fetch(batch=free, timeout=1)
            except TimeoutError:
                # Nothing to fetch within the timeout: the idle case, not a failure. nats-py
                # raises its own TimeoutError or FetchTimeoutError, and sometimes a bare
                # asyncio.TimeoutError (builtins.TimeoutError, whose str() is empty) when the
                # deadline runs out between its two pull requests; TimeoutError covers all.
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any fetch error
                logger.warning(
                    "fetch from %s failed: %s: %s", self.durable, type(exc).__name__, exc
                )
                await asyncio.sleep(0.5)
                continue
            for message in messages:
                await self._slots.acquire()
                task = asyncio.create_task(self._handle(message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _handle(self, message: Msg) -> None:
        run_id = (message.headers or {}).get(HEADER_RUN_ID)
        request_id = (message.headers or {}).get(HEADER_REQUEST_ID)
        token = current_request_id.set(request_id)
        attempt = _delivery_attempt.set(message.metadata.num_delivered)
        try:
            with run_context(run_id):
                await self._handle_in_context(message)
        finally:
            _delivery_attempt.reset(attempt)
            current_request_id.reset(token)
            self._slots.release()

    async def _keep_alive(self, message: Msg) -> None:
        """A run can outlast ``ack_wait``; tell JetStream we are still on it."""
        while True:
            await asyncio.sleep(self.ack_wait_seconds / 3)
            with contextlib.suppress(Exception):
                await message.in_progress()

    async def _handle_in_context(self, message: Msg) -> None:
        keep_alive = asyncio.create_task(self._keep_alive(message))
        try:
            await self._dispatch(message)
        except asyncio.CancelledError:
            # Shutting down mid-message: let JetStream redeliver it to a live replica.
            with contextlib.suppress(Exception):
                await message.nak()
            raise
        except Exception as exc:
            delivered = message.metadata.num_delivered
            if delivered >= self.max_deliver:
                logger.exception("giving up on %s after %d deliveries", message.subject, delivered)
                try:
                    await self.on_give_up(message, exc)
                finally:
                    await message.term()
                return
            logger.warning(
                "handling %s failed (delivery %d of %d), will retry: %s",
                message.subject,
                delivered,
                self.max_deliver,
                exc,
            )
            await message.nak(delay=self.retry_delay_seconds * delivered)
            return
        finally:
            keep_alive.cancel()
        await message.ack()
        # One line per handled event, tagged with run_id and the originating request id.
        logger.info("handled %s", message.subject)

    async def stop(self) -> None:
        self._stopping.set()
        if self._loop_task:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        # In-flight messages get a short grace period, then are handed back for redelivery.
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # A pull subscription whose fetch was cancelled never drains: without this the
        # connection's drain() waits out its whole timeout (30 s) on every shutdown.
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()
