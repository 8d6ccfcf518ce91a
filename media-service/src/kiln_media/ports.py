"""What the media domain needs from the outside world, as protocols (adapters live at the edge)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from kiln_contracts.events import GeneratedOutput, RunMessage


class OutputFetchError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class OutputSource(Protocol):
    def stream(self, backend_url: str, output: GeneratedOutput) -> AsyncIterator[bytes]:
        """Yield the output's bytes; raise OutputFetchError on failure."""
        ...


class EventPublisher(Protocol):
    async def publish(self, event: RunMessage) -> None:
        """Publish a run event (``stored``, ``failed``) for the other services."""
