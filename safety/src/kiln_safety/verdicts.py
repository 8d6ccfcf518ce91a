"""What a check answers, and the port every check implements."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field


class Verdict(StrEnum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"
    # The check was configured but gave no usable answer: never counts as allowed.
    UNAVAILABLE = "unavailable"


class CheckPoint(StrEnum):
    """Where in a run's path content is checked. Only points something enforces are listed,
    so a policy cannot name a point that nothing reads."""

    INPUT = "input"  # the participant's prompt, before anything is queued
    TEXT_STAGE = "text_stage"  # a text stage's output, before it goes on (pipeline)


class CheckResult(BaseModel):
    """One check's answer. ``rules`` are rule ids, never the matched text: a participant may
    read a refusal, and it must not repeat the words that caused it."""

    check: str
    verdict: Verdict
    categories: list[str] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)
    reason: str = ""
    model: str | None = None
    duration_ms: float = 0.0


class TextCheck(Protocol):
    """A check of text. Raising is allowed: the screen turns it into ``unavailable``."""

    name: str

    async def check_text(self, text: str) -> CheckResult: ...
