"""NATS adapters of export-service: publishing export events, taking requested jobs, and
following one export's events for a client."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kiln_common.nats import DurableConsumer
from kiln_contracts.exports import ExportMessage, ExportProgress, ExportRequested
from kiln_contracts.subjects import (
    EXPORTS_REQUESTED,
    EXPORTS_STREAM,
    HEADER_MSG_ID,
    ExportEventName,
    export_event_subject,
    export_events_wildcard,
)
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from kiln_export.jobs import ExportJobs, JobNotFoundError

logger = logging.getLogger("kiln.export.messaging")

REQUESTED_DURABLE = "export-service-requested"


def _msg_id(message: ExportMessage) -> str:
    if isinstance(message, ExportProgress):
        # Progress repeats; each distinct figure is one message.
        return f"{message.export_id}:progress:{message.state.value}:{message.runs_done}:{message.bytes}"
    return f"{message.export_id}:{message.event_name}"


def _subject(message: ExportMessage) -> str:
    if isinstance(message, ExportRequested):
        return EXPORTS_REQUESTED
    return export_event_subject(message.export_id, ExportEventName(message.event_name))


class ExportPublisher:
    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def __call__(self, message: ExportMessage) -> None:
        await self.js.publish(
            _subject(message),
            message.model_dump_json().encode(),
            headers={HEADER_MSG_ID: _msg_id(message)},
        )


def requested_consumer(
    js: JetStreamContext, jobs: ExportJobs, concurrency: int, ack_wait_seconds: float
) -> DurableConsumer:
    async def handle(message: Msg) -> None:
        requested = ExportRequested.model_validate_json(message.data)
        try:
            await jobs.run(requested.export_id)
        except JobNotFoundError:
            # Its record expired (or was never written): there is nothing left to build.
            logger.warning("export %s has no record; request dropped", requested.export_id)

    async def give_up(message: Msg, exc: BaseException) -> None:
        requested = ExportRequested.model_validate_json(message.data)
        await jobs.give_up(requested.export_id, f"export failed repeatedly: {exc}"[:500])

    return DurableConsumer(
        js=js,
        stream=EXPORTS_STREAM,
        durable=REQUESTED_DURABLE,
        filter_subjects=[EXPORTS_REQUESTED],
        handler=handle,
        on_give_up=give_up,
        concurrency=concurrency,
        ack_wait_seconds=ack_wait_seconds,
        max_deliver=jobs.settings.export_max_attempts + 1,
    )


class NatsExportEventSubscription:
    """One export's events from a core NATS subscription, buffered for one reader."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=256)
        self._subscription: Subscription | None = None

    @classmethod
    async def open(cls, nc: NatsClient, export_id: str) -> NatsExportEventSubscription:
        opened = cls()
        opened._subscription = await nc.subscribe(
            export_events_wildcard(export_id), cb=opened._on_message
        )
        return opened

    async def _on_message(self, message: Msg) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a slow reader loses progress, not state
            self._queue.put_nowait((message.subject.rsplit(".", 1)[-1], message.data))

    async def next(self, timeout_seconds: float) -> tuple[str, bytes] | None:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_seconds)
        except TimeoutError:
            return None

    async def close(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()


class NatsExportEventFeed:
    """Follows exports' events on core NATS (what export-service publishes to JetStream is
    also delivered to plain subscribers)."""

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc

    async def subscribe(self, export_id: str) -> NatsExportEventSubscription:
        return await NatsExportEventSubscription.open(self.nc, export_id)
