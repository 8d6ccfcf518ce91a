"""HTTP bodies exchanged between services (not only between browser and gateway)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from kiln_contracts.records import RunRecord, RunRequest
from kiln_contracts.text import Utf8Str


class CreateRunBody(BaseModel):
    """Gateway → media-service: create the run folder and record before anything is queued."""

    run_id: str
    request: RunRequest


class FailRunBody(BaseModel):
    """Gateway → media-service: record a failure that happened before the run reached NATS."""

    stage: str
    code: str
    message: str
    retryable: bool = False


class ServiceInfo(BaseModel):
    """``GET /system`` on every service (docs/design.md §2.2)."""

    service: str
    instance_id: str
    version: str
    storage_id: str | None = Field(
        default=None, description="The id written once into the storage root this service uses."
    )
    storage_root: str | None = None
    details: dict[str, object] = Field(default_factory=dict)


class RunPage(BaseModel):
    """``GET /runs`` on media-service (and ``/api/runs`` on the gateway): newest first."""

    items: list[RunRecord]
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next page; null on the last page."
    )


class BlockEntityBody(BaseModel):
    """Researcher only: blocked media is never served (451) but stays for research."""

    reason: Utf8Str = Field(min_length=1, max_length=500)


class DeletionRequest(BaseModel):
    """GDPR deletion of every run of one device or one workshop session (exactly one of them)."""

    device_id: str | None = None
    session_id: str | None = None


class DeletionReport(BaseModel):
    deleted: list[str] = Field(description="Run ids deleted by this request.")
