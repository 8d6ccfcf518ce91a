"""NATS edge of export-service: taking requested jobs (events are published with
``kiln_common.nats.publish``)."""

from __future__ import annotations

import logging

from kiln_common.nats import DurableConsumer
from kiln_contracts.exports import ExportRequested
from kiln_contracts.subjects import EXPORTS_STREAM
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from kiln_export.jobs import ExportJobs, JobNotFoundError

logger = logging.getLogger("kiln.export.messaging")

REQUESTED_DURABLE = "export-service-requested"


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
