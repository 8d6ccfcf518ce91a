"""NATS edge of pipeline-service: consumes ``runs.requested``, publishes what happens."""

from __future__ import annotations

import logging

from kiln_common.logging import run_context
from kiln_common.nats import DurableConsumer, publish_progress, publish_run_event
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import (
    RunCancel,
    RunCancelled,
    RunFailed,
    RunGenerated,
    RunProgress,
    RunRequested,
    RunStarted,
    RunTextStage,
)
from kiln_contracts.records import Stage
from kiln_contracts.subjects import (
    RUNS_REQUESTED,
    RUNS_STREAM,
    RunEventName,
    run_event_filter,
    run_event_subject,
)
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from kiln_pipeline.driver import RunDriver

logger = logging.getLogger("kiln.pipeline.messaging")

DURABLE = "pipeline"


class NatsRunEventSink:
    def __init__(self, nc: NatsClient, js: JetStreamContext) -> None:
        self.nc = nc
        self.js = js

    async def text_stage(self, event: RunTextStage) -> None:
        await publish_run_event(
            self.js, run_event_subject(event.run_id, RunEventName.TEXT_STAGE), event
        )

    async def started(self, event: RunStarted) -> None:
        await publish_run_event(
            self.js, run_event_subject(event.run_id, RunEventName.STARTED), event
        )

    async def generated(self, event: RunGenerated) -> None:
        await publish_run_event(
            self.js, run_event_subject(event.run_id, RunEventName.GENERATED), event
        )

    async def failed(self, event: RunFailed) -> None:
        await publish_run_event(
            self.js, run_event_subject(event.run_id, RunEventName.FAILED), event
        )

    async def cancelled(self, event: RunCancelled) -> None:
        await publish_run_event(
            self.js, run_event_subject(event.run_id, RunEventName.CANCELLED), event
        )

    async def progress(self, event: RunProgress) -> None:
        await publish_progress(self.nc, event)


class StreamCancelLedger:
    """The gateway publishes ``runs.{id}.cancel`` into the RUNS stream, so the stream itself
    records every cancel request: a run picked up later finds its request there."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def requested(self, run_id: str) -> bool:
        try:
            await self.js.get_last_msg(RUNS_STREAM, run_event_subject(run_id, RunEventName.CANCEL))
        except NotFoundError:
            return False
        return True


async def subscribe_cancels(nc: NatsClient, driver: RunDriver) -> Subscription:
    """Every instance hears every cancel request (no queue group): the run may be driven by any
    replica, and only the one driving it acts. Runs not yet picked up check the ledger."""

    async def on_cancel(message: Msg) -> None:
        try:
            cancel = RunCancel.model_validate_json(message.data)
        except ValidationError as exc:
            logger.error("undecodable cancel request on %s: %s", message.subject, exc)
            return
        with run_context(cancel.run_id):
            driver.request_cancel(cancel.run_id)

    return await nc.subscribe(run_event_filter(RunEventName.CANCEL), cb=on_cancel)


def build_consumer(
    js: JetStreamContext, driver: RunDriver, sink: NatsRunEventSink, concurrency: int
) -> DurableConsumer:
    async def handle(message: Msg) -> None:
        await driver.drive(
            RunRequested.model_validate_json(message.data),
            redelivered=message.metadata.num_delivered > 1,
        )

    async def give_up(message: Msg, exc: BaseException) -> None:
        request = RunRequested.model_validate_json(message.data)
        await sink.failed(
            RunFailed(
                run_id=request.run_id,
                stage=Stage.PIPELINE,
                code=ErrorCode.BACKEND_UNAVAILABLE,
                message=f"gave up after repeated failures: {type(exc).__name__}: {exc}",
                retryable=True,
            )
        )

    return DurableConsumer(
        js=js,
        stream=RUNS_STREAM,
        durable=DURABLE,
        filter_subjects=[RUNS_REQUESTED],
        handler=handle,
        on_give_up=give_up,
        concurrency=concurrency,
    )
