"""NATS edge of media-service: the durable consumer of run events and the event publisher."""

from __future__ import annotations

import logging

from kiln_common.nats import DurableConsumer, publish_run_event
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import (
    RunCancelled,
    RunFailed,
    RunGenerated,
    RunStarted,
    RunStored,
    RunTextStage,
)
from kiln_contracts.records import Stage
from kiln_contracts.subjects import (
    RUNS_STREAM,
    RunEventName,
    parse_run_event_subject,
    run_event_filter,
    run_event_subject,
)
from kiln_storage.local import RunNotFoundError
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from kiln_media.service import MediaService

logger = logging.getLogger("kiln.media.messaging")

DURABLE = "media"


class JetStreamPublisher:
    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def stored(self, event: RunStored) -> None:
        await publish_run_event(
            self.js, run_event_subject(event.run_id, RunEventName.STORED), event
        )

    async def failed(self, event: RunFailed) -> None:
        await publish_run_event(
            self.js, run_event_subject(event.run_id, RunEventName.FAILED), event
        )


def build_consumer(
    js: JetStreamContext, service: MediaService, concurrency: int
) -> DurableConsumer:
    async def handle(message: Msg) -> None:
        run_id, name = parse_run_event_subject(message.subject)
        try:
            if name == RunEventName.TEXT_STAGE:
                await service.on_text_stage(RunTextStage.model_validate_json(message.data))
            elif name == RunEventName.STARTED:
                await service.on_started(RunStarted.model_validate_json(message.data))
            elif name == RunEventName.GENERATED:
                await service.on_generated(RunGenerated.model_validate_json(message.data))
            elif name == RunEventName.FAILED:
                await service.on_failed(RunFailed.model_validate_json(message.data))
            elif name == RunEventName.CANCELLED:
                await service.on_cancelled(RunCancelled.model_validate_json(message.data))
            logger.info("handled %s (delivery %d)", name.value, message.metadata.num_delivered)
        except RunNotFoundError:
            # An event for a run this root never created cannot be applied; redelivering it
            # would not help. Say so loudly and drop it.
            logger.error("event %s for unknown run %s dropped", name.value, run_id)

    async def give_up(message: Msg, exc: BaseException) -> None:
        run_id, name = parse_run_event_subject(message.subject)
        failed = RunFailed(
            run_id=run_id,
            stage=Stage.MEDIA,
            code=ErrorCode.STORAGE_FAILED,
            message=f"could not apply {name.value}: {type(exc).__name__}: {exc}",
        )
        await service.record_failure(failed)
        await publish_run_event(js, run_event_subject(run_id, RunEventName.FAILED), failed)

    return DurableConsumer(
        js=js,
        stream=RUNS_STREAM,
        durable=DURABLE,
        filter_subjects=[
            run_event_filter(RunEventName.TEXT_STAGE),
            run_event_filter(RunEventName.STARTED),
            run_event_filter(RunEventName.GENERATED),
            run_event_filter(RunEventName.FAILED),
            run_event_filter(RunEventName.CANCELLED),
        ],
        handler=handle,
        on_give_up=give_up,
        concurrency=concurrency,
    )
