"""NATS edge of pipeline-service: consumes ``runs.requested``, publishes what happens."""

from __future__ import annotations

import logging

from kiln_common.logging import run_context
from kiln_common.nats import (
    DurableConsumer,
    JetStreamPublisher,
    delivery_attempt,
    publish_progress,
)
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import RunCancel, RunFailed, RunProgress, RunRequested
from kiln_contracts.records import Stage
from kiln_contracts.subjects import (
    CLAIM_CANCELLED,
    CLAIM_DRIVING,
    RUNS_STREAM,
    RunEventName,
    run_event_subject,
)
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from kiln_pipeline.driver import RunDriver

logger = logging.getLogger("kiln.pipeline.messaging")

DURABLE = "pipeline"


class NatsRunEventSink(JetStreamPublisher):
    """Stored events on JetStream, progress on core NATS."""

    def __init__(self, nc: NatsClient, js: JetStreamContext) -> None:
        super().__init__(js)
        self.nc = nc

    async def progress(self, event: RunProgress) -> None:
        await publish_progress(self.nc, event)


class StreamCancelLedger:
    """The gateway publishes ``runs.{id}.cancel`` into the RUNS stream, so the stream itself
    records every cancel request: a run picked up later finds its request there. A cancel of a
    run still waiting in the backlog claims the run in ``kiln_run_claims`` first (the gateway
    records it cancelled at once); the pipeline claims each run it takes, so exactly one wins."""

    def __init__(self, js: JetStreamContext, claims: KeyValue) -> None:
        self.js = js
        self.claims = claims

    async def take(self, run_id: str) -> bool:
        try:
            await self.claims.create(run_id, CLAIM_DRIVING)
        except KeyWrongLastSequenceError:
            try:
                claim = await self.claims.get(run_id)
            except KeyNotFoundError:  # expired meanwhile: nobody else holds it
                return True
            # A claim by this pipeline from an earlier delivery is taken again.
            return claim.value != CLAIM_CANCELLED
        return True

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

    return await nc.subscribe(RunCancel.subject_filter(), cb=on_cancel)


def build_consumer(
    js: JetStreamContext, driver: RunDriver, sink: NatsRunEventSink, concurrency: int
) -> DurableConsumer:
    async def on_requested(requested: RunRequested) -> None:
        await driver.drive(requested, redelivered=delivery_attempt() > 1)

    async def give_up(message: Msg, exc: BaseException) -> None:
        request = RunRequested.model_validate_json(message.data)
        await sink.publish(
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
        handlers={RunRequested: on_requested},
        on_give_up=give_up,
        concurrency=concurrency,
    )
