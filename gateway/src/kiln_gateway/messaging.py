"""NATS edge of the gateway's run creation: queueing requested runs and sending cancels.
(The run event stream for clients is in events.py.)"""

from __future__ import annotations

from kiln_common.nats import publish
from kiln_contracts.events import BackendOutcome, RunCancel, RunCancelled, RunRequested
from kiln_contracts.subjects import CLAIM_CANCELLED
from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue


class NatsRunQueue:
    def __init__(self, js: JetStreamContext, claims: KeyValue) -> None:
        self.js = js
        self.claims = claims

    async def cancel_waiting(self, run_id: str) -> bool:
        """Cancel a run no pipeline has taken yet: claim it in ``kiln_run_claims`` (the pipeline
        claims every run it takes, so of the two exactly one wins) and record it cancelled at
        once. False when a pipeline has it: then only a cancel request can stop it."""
        try:
            await self.claims.create(run_id, CLAIM_CANCELLED)
        except KeyWrongLastSequenceError:
            claim = await self.claims.get(run_id)
            if claim.value != CLAIM_CANCELLED:
                return False
            # Another replica (or an earlier try) claimed it for a cancel: say it again; the
            # same Nats-Msg-Id keeps it one message.
        await publish(
            self.js,
            RunCancelled(
                run_id=run_id,
                backend_outcome=BackendOutcome.NEVER_SUBMITTED,
                message="cancelled while waiting in the backlog",
            ),
        )
        return True

    async def enqueue(self, requested: RunRequested) -> None:
        await publish(self.js, requested)

    async def request_cancel(self, cancel: RunCancel) -> None:
        await publish(self.js, cancel)
