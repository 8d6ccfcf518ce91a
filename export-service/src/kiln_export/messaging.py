"""NATS edge of export-service: taking requested jobs and following one export's events for a
client (events are published with ``kiln_common.nats.publish``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kiln_common.nats import DurableConsumer
from kiln_contracts.events import event_type_for
from kiln_contracts.exports import (
    ExportCompleted,
    ExportFailed,
    ExportMessage,
    ExportProgress,
    ExportRequested,
)
from kiln_contracts.subjects import EXPORTS_STREAM, export_events_wildcard
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from pydantic import ValidationError

from kiln_export.jobs import ExportJobs, JobNotFoundError

logger = logging.getLogger("kiln.export.messaging")

REQUESTED_DURABLE = "export-service-requested"

# What a client following one export is passed, each under its event name.
STREAMED_EVENTS = (ExportProgress, ExportCompleted, ExportFailed)


def requested_consumer(
    js: JetStreamContext, jobs: ExportJobs, concurrency: int, ack_wait_seconds: float
) -> DurableConsumer:
    async def on_requested(requested: ExportRequested) -> None:
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
        handlers={ExportRequested: on_requested},
        on_give_up=give_up,
        concurrency=concurrency,
        ack_wait_seconds=ack_wait_seconds,
        max_deliver=jobs.settings.export_max_attempts + 1,
    )


class NatsExportEventSubscription:
    """One export's events from a core NATS subscription, buffered for one reader."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[ExportMessage] = asyncio.Queue(maxsize=256)
        self._subscription: Subscription | None = None

    @classmethod
    async def open(cls, nc: NatsClient, export_id: str) -> NatsExportEventSubscription:
        opened = cls()
        opened._subscription = await nc.subscribe(
            export_events_wildcard(export_id), cb=opened._on_message
        )
        return opened

    async def _on_message(self, message: Msg) -> None:
        event_type = event_type_for(message.subject, STREAMED_EVENTS)
        if event_type is None:
            return
        try:
            event = event_type.model_validate_json(message.data)
        except ValidationError as exc:
            logger.warning("dropping malformed %s: %s", message.subject, exc)
            return
        with contextlib.suppress(asyncio.QueueFull):  # a slow reader loses progress, not state
            self._queue.put_nowait(event)

    async def next(self, timeout_seconds: float) -> ExportMessage | None:
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
