"""Payloads of the NATS messages between services (docs/design.md §5.4). Validated on receipt."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from kiln_contracts.errors import ErrorCode
from kiln_contracts.ids import RunId
from kiln_contracts.records import SafetyLevel, Stage, utc_now
from kiln_contracts.subjects import RunEventName


class RunMessage(BaseModel):
    # Unknown fields are ignored so a newer sender does not break an older receiver mid-deploy.
    model_config = ConfigDict(extra="ignore", frozen=True)
    event_name: ClassVar[str]

    run_id: RunId
    at: datetime = Field(default_factory=utc_now)

    @property
    def dedup_key(self) -> str:
        """The event part of the JetStream de-duplication id: one message per run and key."""
        return self.event_name


class RunRequested(RunMessage):
    event_name: ClassVar[str] = "requested"

    workflow: str
    input_text: str
    params: dict[str, JsonValue] = Field(default_factory=dict)
    device_id: str | None = None
    session_id: str | None = None
    safety_level: SafetyLevel | None = None


class TextStageOutput(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    stage: str = Field(pattern=r"^[a-z][a-z0-9_]{0,30}$", description="The stage's entity type.")
    index: int = Field(ge=0, description="Position among the workflow's text stages.")
    model: str
    text: str


class RunTextStage(RunMessage):
    """One text stage's result, published as soon as it is known (stored even if the run then
    fails before a backend takes it)."""

    event_name: ClassVar[str] = RunEventName.TEXT_STAGE.value

    output: TextStageOutput

    @property
    def dedup_key(self) -> str:
        return f"{self.event_name}:{self.output.index}"


class RunStarted(RunMessage):
    event_name: ClassVar[str] = RunEventName.STARTED.value

    backend: str = Field(description="Name of the ComfyUI backend, e.g. comfyui-0.")
    backend_url: str
    seed: int | None = None
    graph: dict[str, JsonValue] = Field(description="The exact graph sent to ComfyUI.")
    text_stages: list[TextStageOutput] = Field(
        default_factory=list,
        description="Every text stage's result again, so media stores them before the graph "
        "whichever event it applies first.",
    )


class GeneratedOutput(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    node_id: str
    kind: str = Field(description="ComfyUI's output key: images, gifs, audio, video, text, 3d…")
    filename: str
    subfolder: str = ""
    type: str = "output"


class RunGenerated(RunMessage):
    event_name: ClassVar[str] = RunEventName.GENERATED.value

    backend: str
    backend_url: str
    outputs: list[GeneratedOutput] = Field(min_length=1)


class RunStored(RunMessage):
    event_name: ClassVar[str] = RunEventName.STORED.value

    filenames: list[str]


class RunFailed(RunMessage):
    event_name: ClassVar[str] = RunEventName.FAILED.value

    stage: Stage
    code: ErrorCode
    message: str
    retryable: bool = False
    details: dict[str, JsonValue] = Field(default_factory=dict)


class RunCancel(RunMessage):
    event_name: ClassVar[str] = RunEventName.CANCEL.value

    reason: str = "requested"


class RunCancelled(RunMessage):
    event_name: ClassVar[str] = RunEventName.CANCELLED.value

    reason: str = "requested"


class RunProgress(RunMessage):
    """Core NATS only: lost progress is harmless, so it is never stored."""

    event_name: ClassVar[str] = "progress"

    node: str | None
    value: float
    max: float
    share: float = Field(ge=0, le=1, description="Share of the graph's nodes done.")
