"""What export-service's domain and routes need from the outside world, as protocols (the NATS
adapters live in messaging.py; fakes stand in for them in tests)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from kiln_contracts.exports import ExportMessage

Publish = Callable[[ExportMessage], Awaitable[None]]
"""Publishes one export event (requested, progress, completed, failed)."""


class ExportEventSubscription(Protocol):
    """The events of one export (progress, completed, failed), decoded, from when it was
    opened."""

    async def next(self, timeout_seconds: float) -> ExportMessage | None:
        """The next event, or None when none came within ``timeout_seconds``."""
        ...

    async def close(self) -> None: ...


class ExportEventFeed(Protocol):
    async def subscribe(self, export_id: str) -> ExportEventSubscription: ...
