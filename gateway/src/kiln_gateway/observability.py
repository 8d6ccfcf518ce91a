"""Run metrics derived from the event stream: every run event passes through NATS, so the
gateway counts them once (a core NATS queue group: one replica per message) instead of each
service keeping its own partial view."""

from __future__ import annotations

import logging

from kiln_common.metrics import RUN_FAILURES, RUNS_BY_STATE, STAGE_LATENCY, STORAGE_ERRORS
from kiln_contracts.events import RunFailed, event_type_for
from kiln_contracts.ids import run_created_at
from kiln_contracts.records import Stage
from kiln_contracts.subjects import EVERY_RUN_EVENT
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from kiln_gateway.events import STATE_EVENTS

logger = logging.getLogger("kiln.gateway.metrics")

QUEUE_GROUP = "kiln-gateway-metrics"


async def observe_run_events(nc: NatsClient) -> Subscription:
    async def on_event(msg: Msg) -> None:
        # runs.requested is no state event: counted as "queued" where the run is created.
        event_type = event_type_for(msg.subject, STATE_EVENTS)
        if event_type is None or event_type.moves_to is None:
            return
        try:
            event = event_type.model_validate_json(msg.data)
            RUNS_BY_STATE.labels(event_type.moves_to.value).inc()
            STAGE_LATENCY.labels(event_type.event_name.value).observe(
                max(0.0, (event.at - run_created_at(event.run_id)).total_seconds())
            )
            if isinstance(event, RunFailed):
                RUN_FAILURES.labels(event.stage.value, event.code.value).inc()
                if event.stage == Stage.MEDIA:
                    STORAGE_ERRORS.inc()
        except ValidationError as exc:
            logger.warning("malformed %s event not counted: %s", msg.subject, exc)

    return await nc.subscribe(EVERY_RUN_EVENT, queue=QUEUE_GROUP, cb=on_event)
