"""NATS edge of media-service: the durable consumer of run events."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kiln_common.nats import DurableConsumer, EventHandler, delivery_attempt, publish
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import (
    Event,
    RunCancelled,
    RunCancelling,
    RunFailed,
    RunGenerated,
    RunMessage,
    RunResubmitted,
    RunStarted,
    RunTextStage,
)
from kiln_contracts.records import Stage
from kiln_contracts.subjects import RUNS_STREAM, parse_run_event_subject
from kiln_storage.base import RunNotFoundError
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from kiln_media.service import MediaService

logger = logging.getLogger("kiln.media.messaging")

DURABLE = "media"


EventT = TypeVar("EventT", bound=RunMessage)


def _applied(handler: Callable[[EventT], Awaitable[None]]) -> Callable[[EventT], Awaitable[None]]:
    """The handler, but an event for an unknown run is dropped (loudly) instead of retried."""

    async def apply(event: EventT) -> None:
        try:
            await handler(event)
        except RunNotFoundError:
            # An event for a run this root never created cannot be applied; redelivering it
            # would not help. Say so loudly and drop it.
            logger.error("event %s for unknown run %s dropped", event.event_name, event.run_id)
            return
        logger.info("handled %s (delivery %d)", event.event_name, delivery_attempt())

    return apply


def build_consumer(
    js: JetStreamContext, service: MediaService, concurrency: int
) -> DurableConsumer:
    handlers: dict[type[Event], EventHandler] = {
        RunTextStage: _applied(service.on_text_stage),
        RunStarted: _applied(service.on_started),
        RunGenerated: _applied(service.on_generated),
        RunFailed: _applied(service.on_failed),
        RunCancelling: _applied(service.on_cancelling),
        RunResubmitted: _applied(service.on_resubmitted),
        RunCancelled: _applied(service.on_cancelled),
    }

    async def give_up(message: Msg, exc: BaseException) -> None:
        run_id, name = parse_run_event_subject(message.subject)
        failed = RunFailed(
            run_id=run_id,
            stage=Stage.MEDIA,
            code=ErrorCode.STORAGE_FAILED,
            message=f"could not apply {name.value}: {type(exc).__name__}: {exc}",
        )
        await service.record_failure(failed)
        await publish(js, failed)

    return DurableConsumer(
        js=js,
        stream=RUNS_STREAM,
        durable=DURABLE,
        handlers=handlers,
        on_give_up=give_up,
        concurrency=concurrency,
    )
