"""NATS adapters of export-service: publishing export events and taking requested jobs."""

from __future__ import annotations

import logging

from kiln_common.nats import DurableConsumer
from kiln_contracts.exports import ExportMessage, ExportProgress, ExportRequested
from kiln_contracts.subjects import (
    EXPORTS_REQUESTED,
    EXPORTS_STREAM,
    HEADER_MSG_ID,
    ExportEventName,
    export_event_subject,
)
from nats.aio.msg import Msg
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
