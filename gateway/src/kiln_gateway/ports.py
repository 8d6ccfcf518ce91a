"""What run creation needs from the outside world, as protocols: the run records (kept by
media-service), the run queue (NATS JetStream), the workflow catalogue, the idempotency claims
and the admission limits. The adapters live at the edge (upstream.py, messaging.py,
idempotency.py, limits.py, catalog.py); unit tests put fakes in their place."""

from __future__ import annotations

from typing import Protocol

from kiln_contracts.events import RunCancel, RunRequested
from kiln_contracts.records import RunError, RunRecord, RunRequest, SafetyLevel
from kiln_contracts.workflows import WorkflowManifest
from kiln_safety.screen import Decision
from kiln_safety.verdicts import CheckPoint

from kiln_gateway.idempotency import Claim
from kiln_gateway.models import RunAccepted


class RunRecords(Protocol):
    """The one record of every run. Failures are UpstreamErrors with honest statuses
    (504 when it did not answer in time: the run may still have been created)."""

    async def create(self, run_id: str, request: RunRequest) -> RunRecord:
        """Create the run ``queued``; for the same id and request, answer the existing one."""
        ...

    async def get(self, run_id: str) -> RunRecord: ...

    async def fail(self, run_id: str, failure: RunError) -> None:
        """Record a failure that happened before the run reached the queue."""
        ...


class PromptScreen(Protocol):
    """The safety checks of a level (kiln_safety.screen.Screen)."""

    async def screen_text(self, level: SafetyLevel, point: CheckPoint, text: str) -> Decision: ...


class RunQueue(Protocol):
    """Where requested runs wait for the pipeline, and where cancels are sent."""

    async def enqueue(self, requested: RunRequested) -> None:
        """Queue the run (a repeat of the same run is dropped by the queue)."""
        ...

    async def cancel_waiting(self, run_id: str) -> bool:
        """Cancel the run at once if no pipeline has taken it yet; False when one has."""
        ...

    async def request_cancel(self, cancel: RunCancel) -> None: ...


class Workflows(Protocol):
    async def get(self, name: str) -> WorkflowManifest | None: ...


class IdempotencyClaims(Protocol):
    """``Idempotency-Key`` bookkeeping; see idempotency.py for the protocol of a claim."""

    async def claim(
        self, storage_key: str, hashed: str, new_run_id: str, request: RunRequest
    ) -> Claim: ...

    async def complete(self, storage_key: str, hashed: str, accepted: RunAccepted) -> None: ...

    async def abandon(
        self, storage_key: str, hashed: str, run_id: str, request: RunRequest
    ) -> None: ...


class DeviceRateLimit(Protocol):
    async def check(self, device_id: str) -> None:
        """Raise a 429 GatewayError when this device has started too many runs just now."""
        ...


class QueueDepthLimit(Protocol):
    async def check(self) -> None:
        """Raise a 429 GatewayError while too many runs are waiting."""
        ...
