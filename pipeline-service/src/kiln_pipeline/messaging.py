"""NATS edge of pipeline-service: consumes ``runs.requested``, publishes what happens."""

from __future__ import annotations

from kiln_common.nats import DurableConsumer, publish_progress, publish_run_event
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import RunFailed, RunGenerated, RunProgress, RunRequested, RunStarted
from kiln_contracts.records import Stage
from kiln_contracts.subjects import RUNS_REQUESTED, RUNS_STREAM, RunEventName, run_event_subject
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from kiln_pipeline.driver import RunDriver

DURABLE = "pipeline"


class NatsRunEventSink:
    def __init__(self, nc: NatsClient, js: JetStreamContext) -> None:
        self.nc = nc
        self.js = js

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

    async def progress(self, event: RunProgress) -> None:
        await publish_progress(self.nc, event)


def build_consumer(
    js: JetStreamContext, driver: RunDriver, sink: NatsRunEventSink, concurrency: int
) -> DurableConsumer:
    async def handle(message: Msg) -> None:
        await driver.drive(RunRequested.model_validate_json(message.data))

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
