"""The run record: what ``metadata.json`` holds. Versioned; the one record of a run."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from kiln_contracts.errors import ErrorCode
from kiln_contracts.ids import RunId
from kiln_contracts.text import Utf8Str

SCHEMA_VERSION = 1


def utc_now() -> datetime:
    return datetime.now(UTC)


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    STORING = "storing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
_PROGRESS_ORDER = [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.STORING, RunStatus.COMPLETED]


def can_transition(current: RunStatus, new: RunStatus) -> bool:
    """queued → running → storing → completed; failed/cancelled from any non-final state.

    Final states never change. Moving forward may skip a step (a fast run can be stored before
    its `started` event is applied); moving backwards never happens.
    """
    if current.is_final:
        return False
    if new in (RunStatus.FAILED, RunStatus.CANCELLED):
        return True
    return _PROGRESS_ORDER.index(new) > _PROGRESS_ORDER.index(current)


class Stage(StrEnum):
    """Where in the system a failure happened."""

    GATEWAY = "gateway"
    SAFETY = "safety"
    PIPELINE = "pipeline"
    BACKEND = "backend"
    MEDIA = "media"


class RunError(BaseModel):
    """The one shape of a run's failure: on the record, in ``RunFailed`` and in the HTTP body
    that records a failure found before the run reached NATS."""

    stage: Stage
    code: ErrorCode
    message: str
    retryable: bool = False
    details: dict[str, JsonValue] = Field(default_factory=dict)


class BlockInfo(BaseModel):
    reason: str
    at: datetime


class Entity(BaseModel):
    """One stored file of a run."""

    seq: int = Field(ge=1)
    type: str = Field(description="input, workflow, output_image, output_audio, …")
    filename: str
    mime: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime
    meta: dict[str, JsonValue] = Field(default_factory=dict)
    blocked: BlockInfo | None = None


class RunHistoryEntry(BaseModel):
    """One line of the run's history (what the replaced system kept as an 'execution tracker')."""

    at: datetime
    event: str
    status: RunStatus
    detail: dict[str, JsonValue] = Field(default_factory=dict)


class SafetyLevel(StrEnum):
    """How strictly a run's content is filtered; set by the workshop session, never the client."""

    KIDS = "kids"
    YOUTH = "youth"
    ADULT = "adult"
    RESEARCH = "research"

    @classmethod
    def _missing_(cls, value: object) -> SafetyLevel | None:
        # Records and sessions written before the four levels stay readable.
        return {"strict": cls.KIDS, "standard": cls.YOUTH}.get(str(value))


class RunRequest(BaseModel):
    workflow: str
    input_text: Utf8Str
    params: dict[str, JsonValue] = Field(default_factory=dict)
    device_id: str | None = None
    session_id: str | None = None
    safety_level: SafetyLevel | None = None


class RunRecord(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "schema_version": 1,
                    "run_id": "019a4f6e-8c1d-7a3b-9f2e-4b5c6d7e8f90",
                    "status": "completed",
                    "created_at": "2026-11-21T10:00:00Z",
                    "updated_at": "2026-11-21T10:00:01Z",
                    "request": {"workflow": "noise", "input_text": "a red kite", "params": {}},
                    "backend": "comfyui-0",
                    "entities": [],
                    "events": [],
                    "error": None,
                }
            ]
        }
    )

    schema_version: Literal[1] = 1
    run_id: RunId
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    request: RunRequest
    backend: str | None = None
    entities: list[Entity] = Field(default_factory=list)
    events: list[RunHistoryEntry] = Field(default_factory=list)
    error: RunError | None = None

    def entity(self, filename: str) -> Entity | None:
        return next((e for e in self.entities if e.filename == filename), None)

    def next_seq(self) -> int:
        return max((e.seq for e in self.entities), default=0) + 1
