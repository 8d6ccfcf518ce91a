"""Public request and response bodies of the gateway API."""

from __future__ import annotations

from kiln_contracts.records import RunStatus
from kiln_contracts.text import Utf8Str
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from kiln_gateway.sessions import WorkshopSession


class CreateRunRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"workflow": "noise", "input_text": "a red kite", "params": {"width": 256}}
            ]
        },
    )

    workflow: str = Field(min_length=1, max_length=64, description="Name from GET /api/workflows.")
    input_text: Utf8Str = Field(description="The participant's prompt.")
    params: dict[str, JsonValue] = Field(default_factory=dict)


class RunLinks(BaseModel):
    self: str = Field(description="The run record; its entities name the files.")


class RunAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "run_id": "019a4f6e-8c1d-7a3b-9f2e-4b5c6d7e8f90",
                    "status": "queued",
                    "links": {"self": "/api/runs/019a4f6e-8c1d-7a3b-9f2e-4b5c6d7e8f90"},
                }
            ]
        }
    )

    run_id: str
    status: RunStatus
    links: RunLinks


class SystemReport(BaseModel):
    """Every service's instance and the storage root each one uses (docs/design.md §2.2)."""

    services: list[dict[str, JsonValue]]
    storage_ids: list[str] = Field(
        description="Distinct storage root ids in use; more than one is an error."
    )
    consistent: bool


class WhoAmI(BaseModel):
    """What the gateway knows about the caller: a pseudonymous device id, nothing personal."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "device_id": "9f1c3a4e-2b7d-4e8f-a1c2-3d4e5f6a7b8c",
                    "session": None,
                    "researcher": False,
                }
            ]
        }
    )

    device_id: str
    session: WorkshopSession | None = None
    researcher: bool
