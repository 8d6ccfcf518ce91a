from __future__ import annotations

from typing import Protocol

from kiln_contracts.events import (
    RunCancelled,
    RunFailed,
    RunGenerated,
    RunProgress,
    RunStarted,
    RunTextStage,
)


class RunEventSink(Protocol):
    """Where the driver reports what happened to a run (NATS in production, a list in tests)."""

    async def text_stage(self, event: RunTextStage) -> None: ...

    async def started(self, event: RunStarted) -> None: ...

    async def generated(self, event: RunGenerated) -> None: ...

    async def failed(self, event: RunFailed) -> None: ...

    async def cancelled(self, event: RunCancelled) -> None: ...

    async def progress(self, event: RunProgress) -> None: ...


class CancelLedger(Protocol):
    """Whether a cancel was requested for a run before this instance picked it up."""

    async def requested(self, run_id: str) -> bool: ...


class TextStageError(Exception):
    """The chat endpoint failed a text stage (unreachable, error status, no message)."""


class TextGenerator(Protocol):
    """Runs one text stage: an OpenAI-compatible chat endpoint in production."""

    async def complete(self, model: str, system_prompt: str, text: str) -> str: ...
