"""HTTP bodies exchanged between services (not only between browser and gateway)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from kiln_contracts.records import RunRequest


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
    """``GET /system`` on every service (DESIGN §1.5)."""

    service: str
    instance_id: str
    version: str
    storage_id: str | None = Field(
        default=None, description="The id written once into the storage root this service uses."
    )
    storage_root: str | None = None
    details: dict[str, object] = Field(default_factory=dict)
