"""Payloads of the NATS messages between services (docs/design.md §5.4). Validated on receipt.

Every message model knows its name, its subject and its de-duplication id, so services never
spell a subject: they publish an event, or consume the event types they hand a handler for.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from kiln_contracts.ids import RunId
from kiln_contracts.records import RunError, RunRequest, RunStatus, utc_now
from kiln_contracts.subjects import (
    RunEventName,
    msg_id,
    run_event_filter,
    run_event_subject,
    subject_matches,
)


class Event(BaseModel):
    """A NATS message that knows where it goes. Unknown fields are ignored so a newer sender
    does not break an older receiver mid-deploy."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @property
    @abstractmethod
    def subject(self) -> str:
        """The subject this message is published on."""

    @classmethod
    @abstractmethod
    def subject_filter(cls) -> str:
        """The subject filter matching every message of this type (for consumers)."""

    @property
    @abstractmethod
    def msg_id(self) -> str:
        """The JetStream de-duplication id (``Nats-Msg-Id``)."""


EventT = TypeVar("EventT", bound=Event)


def event_type_for(subject: str, types: Iterable[type[EventT]]) -> type[EventT] | None:
    """Which of ``types`` is published on ``subject`` (None: none of them)."""
    return next((t for t in types if subject_matches(t.subject_filter(), subject)), None)


_RUN_EVENT_TYPES: dict[RunEventName, type[RunMessage]] = {}


class RunMessage(Event):
    event_name: ClassVar[RunEventName]
    moves_to: ClassVar[RunStatus | None] = None
    """The state this event moves its run to (None: it is no state change)."""

    run_id: RunId
    at: datetime = Field(default_factory=utc_now)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        name = cls.__dict__.get("event_name")
        if name is None:
            return
        if name in _RUN_EVENT_TYPES:
            raise TypeError(f"two run events named {name}: {_RUN_EVENT_TYPES[name]} and {cls}")
        _RUN_EVENT_TYPES[name] = cls

    @property
    def subject(self) -> str:
        return run_event_subject(self.run_id, self.event_name)

    @classmethod
    def subject_filter(cls) -> str:
        return run_event_filter(cls.event_name)

    @property
    def dedup_key(self) -> str:
        """The event part of the de-duplication id: one message per run and key."""
        return self.event_name.value

    @property
    def msg_id(self) -> str:
        return msg_id(self.run_id, self.dedup_key)


def run_event_types() -> tuple[type[RunMessage], ...]:
    """Every run event model, one per ``RunEventName``."""
    return tuple(_RUN_EVENT_TYPES.values())


class RunRequested(RunMessage):
    event_name: ClassVar[RunEventName] = RunEventName.REQUESTED

    request: RunRequest

    @model_validator(mode="before")
    @classmethod
    def _flat_request(cls, data: Any) -> Any:
        # Until this version the request's fields were spelled out beside run_id; such
        # messages may still wait in the stream after an upgrade and must still be driven.
        if isinstance(data, dict) and "request" not in data and "workflow" in data:
            request = {k: data[k] for k in RunRequest.model_fields if k in data}
            rest = {k: v for k, v in data.items() if k not in RunRequest.model_fields}
            return {**rest, "request": request}
        return data


class TextStageOutput(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    stage: str = Field(pattern=r"^[a-z][a-z0-9_]{0,30}$", description="The stage's entity type.")
    index: int = Field(ge=0, description="Position among the workflow's text stages.")
    model: str
    text: str


class RunTextStage(RunMessage):
    """One text stage's result, published as soon as it is known (stored even if the run then
    fails before a backend takes it)."""

    event_name: ClassVar[RunEventName] = RunEventName.TEXT_STAGE

    output: TextStageOutput

    @property
    def dedup_key(self) -> str:
        return f"{self.event_name.value}:{self.output.index}"


class RunStarted(RunMessage):
    event_name: ClassVar[RunEventName] = RunEventName.STARTED
    moves_to: ClassVar[RunStatus | None] = RunStatus.RUNNING

    backend: str = Field(description="Name of the ComfyUI backend, e.g. comfyui-0.")
    backend_url: str
    seed: int | None = None
    graph: dict[str, JsonValue] = Field(description="The exact graph sent to ComfyUI.")
    text_stages: list[TextStageOutput] = Field(
        default_factory=list,
        description="Every text stage's result again, so media stores them before the graph "
        "whichever event it applies first.",
    )


class StopReason(StrEnum):
    """Why the pipeline asked a backend to stop a run."""

    CANCEL = "cancel"
    DEADLINE = "deadline"


class BackendOutcome(StrEnum):
    """What the backend did with a run the pipeline asked it to stop, as ComfyUI confirmed it
    (it honours an interrupt only between nodes, so a run in its last node finishes anyway)."""

    NEVER_SUBMITTED = "never_submitted"  # no backend had it: nothing to stop
    DEQUEUED = "dequeued"  # removed from the backend's queue before it ran
    INTERRUPTED = "interrupted"  # history says execution_interrupted
    COMPLETED = "completed"  # the backend finished it anyway
    FAILED = "failed"  # the backend ended it with an error
    GONE = "gone"  # in neither queue nor history (removed, or the backend restarted)
    UNCONFIRMED = "unconfirmed"  # the backend did not confirm in time: it may still run it


class LateStop(BaseModel):
    """A cancel or deadline the backend did not honour: it finished the run anyway, and the
    workflow keeps such outputs (manifest ``late_outputs: keep``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    reason: StopReason
    requested_at: datetime


class GeneratedOutput(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    node_id: str
    kind: str = Field(description="ComfyUI's output key: images, gifs, audio, video, text, 3d…")
    filename: str
    subfolder: str = ""
    type: str = "output"


class RunGenerated(RunMessage):
    event_name: ClassVar[RunEventName] = RunEventName.GENERATED
    moves_to: ClassVar[RunStatus | None] = RunStatus.STORING

    backend: str
    backend_url: str
    outputs: list[GeneratedOutput] = Field(min_length=1)
    late_stop: LateStop | None = Field(
        default=None, description="Set when the backend finished the run after a cancel/deadline."
    )


class RunStored(RunMessage):
    event_name: ClassVar[RunEventName] = RunEventName.STORED
    moves_to: ClassVar[RunStatus | None] = RunStatus.COMPLETED

    filenames: list[str]


class RunFailed(RunError, RunMessage):
    """A run's failure: the fields of ``RunError`` (the one failure shape, also on the record
    and in the HTTP body that records a failure), for one run."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    event_name: ClassVar[RunEventName] = RunEventName.FAILED
    moves_to: ClassVar[RunStatus | None] = RunStatus.FAILED

    @classmethod
    def of(cls, run_id: str, error: RunError) -> RunFailed:
        return cls(run_id=run_id, **error.model_dump())

    @property
    def error(self) -> RunError:
        """The failure as the run record keeps it."""
        return RunError.model_validate(self.model_dump(include=set(RunError.model_fields)))


class RunCancel(RunMessage):
    event_name: ClassVar[RunEventName] = RunEventName.CANCEL

    reason: str = "requested"


class RunCancelling(RunMessage):
    """The pipeline asked the backend to stop the run (a cancel or its deadline) and follows it
    until ComfyUI confirms it is gone; the backend's slot stays counted busy meanwhile. No state
    change: the run shows ``cancelling`` until its final event."""

    event_name: ClassVar[RunEventName] = RunEventName.CANCELLING

    reason: StopReason
    backend: str


class RunCancelled(RunMessage):
    event_name: ClassVar[RunEventName] = RunEventName.CANCELLED
    moves_to: ClassVar[RunStatus | None] = RunStatus.CANCELLED

    reason: str = "requested"
    backend: str | None = None
    backend_outcome: BackendOutcome = BackendOutcome.NEVER_SUBMITTED
    message: str = ""


class ResubmitReason(StrEnum):
    BACKEND_LOST = "backend_lost"  # the backend no longer knew the prompt (restart)
    BACKEND_UNAVAILABLE = "backend_unavailable"  # it failed before or while taking the prompt


class RunResubmitted(RunMessage):
    """The run is submitted again (after a lost prompt, or a backend that failed to take it),
    possibly to another backend. One event per attempt."""

    event_name: ClassVar[RunEventName] = RunEventName.RESUBMITTED

    attempt: int = Field(ge=2, description="Which submission attempt this is (the first is 1).")
    backend: str
    previous_backend: str
    reason: ResubmitReason

    @property
    def dedup_key(self) -> str:
        return f"{self.event_name.value}:{self.attempt}"


class RunProgress(RunMessage):
    """Core NATS only: lost progress is harmless, so it is never stored."""

    event_name: ClassVar[RunEventName] = RunEventName.PROGRESS

    node: str | None
    value: float
    max: float
    share: float = Field(ge=0, le=1, description="Share of the graph's nodes done.")
