"""NATS edge of the gateway's run creation: queueing requested runs and sending cancels.
(The run event stream for clients is in events.py.)"""

from __future__ import annotations

from kiln_common.nats import publish
from kiln_contracts.events import RunCancel, RunRequested
from nats.js import JetStreamContext


class NatsRunQueue:
    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def enqueue(self, requested: RunRequested) -> None:
        await publish(self.js, requested)

    async def request_cancel(self, cancel: RunCancel) -> None:
        await publish(self.js, cancel)
