"""Research exports: the request a researcher sends, the job's status, and the NATS payloads
on stream EXPORTS (``exports.requested``, ``exports.{id}.progress|completed|failed``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from kiln_contracts.errors import MappedError
from kiln_contracts.events import Event
from kiln_contracts.ids import RunId, new_run_id, parse_run_id
from kiln_contracts.records import RunStatus, utc_now
from kiln_contracts.subjects import ExportEventName, export_event_filter, export_event_subject


class ExportErrorCode(StrEnum):
    """Error codes of the export API and of failed exports (beside kiln_contracts.errors)."""

    INVALID_EXPORT_ID = "invalid_export_id"
    EXPORT_NOT_FOUND = "export_not_found"
    EXPORT_NOT_READY = "export_not_ready"
    EXPORT_EXPIRED = "export_expired"
    TOO_MANY_RUNS = "too_many_runs"
    TARGET_UNAVAILABLE = "target_unavailable"
    INTEGRITY_FAILED = "integrity_failed"
    RECORD_UNREADABLE = "record_unreadable"
    EXPORT_FAILED = "export_failed"


class InvalidExportIdError(MappedError, ValueError):
    """Raised when a string is not an export id (a lowercase canonical UUIDv7)."""

    code = ExportErrorCode.INVALID_EXPORT_ID
    status_code = 400


def new_export_id() -> str:
    """Export ids have the shape of run ids (UUIDv7): sortable, safe as a file name and token."""
    return new_run_id()


def parse_export_id(value: str) -> str:
    try:
        return parse_run_id(value)
    except ValueError:
        raise InvalidExportIdError(
            f"not an export id (lowercase UUIDv7): {value!r}"[:200]
        ) from None


ExportId = Annotated[str, AfterValidator(parse_export_id)]

MAX_RUN_IDS = 10_000


class ExportFormat(StrEnum):
    ZIP = "zip"
    TAR_GZ = "tar.gz"

    @property
    def media_type(self) -> str:
        return "application/zip" if self is ExportFormat.ZIP else "application/gzip"


class ExportTarget(StrEnum):
    VOLUME = "volume"
    S3 = "s3"


class ExportFilter(BaseModel):
    """Which runs: explicit run ids, or any combination of the other fields (all must match)."""

    model_config = ConfigDict(extra="forbid")

    run_ids: list[RunId] | None = Field(default=None, max_length=MAX_RUN_IDS)
    since: datetime | None = Field(default=None, description="Runs created at or after.")
    until: datetime | None = Field(default=None, description="Runs created before.")
    device_id: str | None = Field(default=None, max_length=200)
    session_id: str | None = Field(default=None, max_length=200)
    workflow: str | None = Field(default=None, max_length=200)
    status: RunStatus | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ExportFilter:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-11-21T00:00:00Z)")
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


class ExportInclude(BaseModel):
    model_config = ConfigDict(extra="forbid")

    blocked: bool = Field(
        default=False, description="Also include blocked media (recorded in bag-info.txt)."
    )


class ExportRequest(BaseModel):
    """``POST /api/exports``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "filter": {"workflow": "noise", "since": "2026-11-01T00:00:00Z"},
                    "format": "zip",
                    "include": {"blocked": False},
                }
            ]
        },
    )

    filter: ExportFilter = Field(default_factory=ExportFilter)
    format: ExportFormat = ExportFormat.ZIP
    include: ExportInclude = Field(default_factory=ExportInclude)
    target: ExportTarget = ExportTarget.VOLUME


class ExportState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (ExportState.COMPLETED, ExportState.FAILED)


class ExportError(BaseModel):
    code: str
    message: str
    run_id: str | None = None
    filename: str | None = None


class ExportAccepted(BaseModel):
    export_id: ExportId
    state: ExportState
    links: dict[str, str]


class ExportStatus(BaseModel):
    """``GET /api/exports/{id}``: the job as it stands."""

    export_id: ExportId
    state: ExportState
    request: ExportRequest
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    attempt: int = 0
    runs_done: int = 0
    runs_total: int = 0
    bytes: int = Field(default=0, description="Archive bytes written so far.")
    skipped_in_progress: list[str] = Field(
        default_factory=list, description="Runs not yet final when the export began: left out."
    )
    missing: list[str] = Field(
        default_factory=list, description="Named run ids not on storage (deleted or never made)."
    )
    blocked_left_out: int = 0
    filename: str | None = None
    sha256: str | None = Field(default=None, description="Of the whole archive, once completed.")
    download_url: str | None = Field(
        default=None, description="Presigned URL when the archive went to S3."
    )
    error: ExportError | None = None


class ExportMessage(Event):
    event_name: ClassVar[ExportEventName]

    export_id: ExportId
    at: datetime = Field(default_factory=utc_now)

    @property
    def subject(self) -> str:
        return export_event_subject(self.export_id, self.event_name)

    @classmethod
    def subject_filter(cls) -> str:
        return export_event_filter(cls.event_name)

    @property
    def msg_id(self) -> str:
        return f"{self.export_id}:{self.event_name.value}"


class ExportRequested(ExportMessage):
    event_name: ClassVar[ExportEventName] = ExportEventName.REQUESTED

    request: ExportRequest


class ExportProgress(ExportMessage):
    event_name: ClassVar[ExportEventName] = ExportEventName.PROGRESS

    state: ExportState
    runs_done: int
    runs_total: int
    bytes: int

    @property
    def msg_id(self) -> str:
        # Progress repeats; each distinct figure is one message.
        return f"{self.export_id}:progress:{self.state.value}:{self.runs_done}:{self.bytes}"


class ExportCompleted(ExportMessage):
    event_name: ClassVar[ExportEventName] = ExportEventName.COMPLETED

    runs_total: int
    bytes: int
    sha256: str


class ExportFailed(ExportMessage):
    event_name: ClassVar[ExportEventName] = ExportEventName.FAILED

    error: ExportError
