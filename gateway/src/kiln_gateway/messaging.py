"""NATS edge of the gateway's run creation: queueing requested runs and sending cancels.
(The run event stream for clients is in events.py.)"""

from __future__ import annotations

from kiln_common.nats import publish_run_event
from kiln_contracts.events import RunCancel, RunRequested
from kiln_contracts.subjects import RUNS_REQUESTED, RunEventName, run_event_subject
from nats.js import JetStreamContext


class NatsRunQueue:
    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def enqueue(self, requested: RunRequested) -> None:
        await publish_run_event(self.js, RUNS_REQUESTED, requested)

    async def request_cancel(self, cancel: RunCancel) -> None:
        await publish_run_event(
            self.js, run_event_subject(cancel.run_id, RunEventName.CANCEL), cancel
        )
