"""Run metrics derived from the event stream: every run event passes through NATS, so the
gateway counts them once (a core NATS queue group: one replica per message) instead of each
service keeping its own partial view."""

from __future__ import annotations

import logging

from kiln_common.metrics import RUN_FAILURES, RUNS_BY_STATE, STAGE_LATENCY, STORAGE_ERRORS
from kiln_contracts.events import RunFailed, RunMessage
from kiln_contracts.ids import run_created_at
from kiln_contracts.records import Stage
from kiln_contracts.subjects import parse_run_event_subject
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from kiln_gateway.events import STATE_OF_EVENT

logger = logging.getLogger("kiln.gateway.metrics")

QUEUE_GROUP = "kiln-gateway-metrics"


async def observe_run_events(nc: NatsClient) -> Subscription:
    async def on_event(msg: Msg) -> None:
        try:
            run_id, name = parse_run_event_subject(msg.subject)
        except ValueError:
            return  # runs.requested: counted as "queued" where the run is created
        state = STATE_OF_EVENT.get(name)
        if state is None:
            return
        try:
            event = RunMessage.model_validate_json(msg.data)
            RUNS_BY_STATE.labels(state.value).inc()
            STAGE_LATENCY.labels(name.value).observe(
                max(0.0, (event.at - run_created_at(run_id)).total_seconds())
            )
            if state.value == "failed":
                failed = RunFailed.model_validate_json(msg.data)
                RUN_FAILURES.labels(failed.stage.value, failed.code.value).inc()
                if failed.stage == Stage.MEDIA:
                    STORAGE_ERRORS.inc()
        except ValidationError as exc:
            logger.warning("malformed %s event not counted: %s", msg.subject, exc)

    return await nc.subscribe("runs.*.*", queue=QUEUE_GROUP, cb=on_event)
