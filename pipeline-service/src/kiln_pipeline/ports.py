from __future__ import annotations

from typing import Protocol

from kiln_contracts.events import RunMessage, RunProgress
from kiln_contracts.records import SafetyLevel
from kiln_safety.screen import Decision
from kiln_safety.verdicts import CheckPoint


class RunEventSink(Protocol):
    """Where the driver reports what happened to a run (NATS in production, a list in tests)."""

    async def publish(self, event: RunMessage) -> None:
        """A stored event (text stage, started, generated, failed, cancelled)."""

    async def progress(self, event: RunProgress) -> None:
        """Ephemeral progress: may be lost, never stored."""


class CancelLedger(Protocol):
    """Whether a cancel was requested for a run before this instance picked it up."""

    async def take(self, run_id: str) -> bool:
        """Claim the run for driving; False when a cancel claimed it first, while it waited
        in the backlog (the run is cancelled, not driven). A redelivery takes it again."""
        ...

    async def requested(self, run_id: str) -> bool: ...


class TextStageError(Exception):
    """The chat endpoint failed a text stage (unreachable, error status, no message)."""


class TextGenerator(Protocol):
    """Runs one text stage: an OpenAI-compatible chat endpoint in production."""

    async def complete(self, model: str, system_prompt: str, text: str) -> str: ...


class TextScreen(Protocol):
    """The safety checks of a level (kiln_safety.screen.Screen)."""

    async def screen_text(self, level: SafetyLevel, point: CheckPoint, text: str) -> Decision: ...
