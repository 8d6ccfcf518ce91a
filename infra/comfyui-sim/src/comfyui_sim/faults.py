"""Faults that tests switch on at run time through ``/sim/faults``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NodeErrorFault(BaseModel):
    """Make every node of ``class_type`` raise at run time (an ``execution_error``)."""

    model_config = ConfigDict(extra="forbid")

    class_type: str
    message: str = "Simulated node failure"
    exception_type: str = "RuntimeError"
    times: int | None = Field(
        default=None, ge=1, description="Fire this many times, then clear itself; null = always."
    )


class Faults(BaseModel):
    """The faults in force. Every field's default means "behave like a healthy ComfyUI"."""

    model_config = ConfigDict(extra="forbid")

    history_delay_seconds: float = Field(default=0.0, ge=0.0)
    suppress_websocket_messages: bool = False
    node_error: NodeErrorFault | None = None
    node_delay_seconds: float | None = Field(default=None, ge=0.0)
    reject_prompts_with_status: int | None = Field(default=None, ge=400, le=599)


class FaultsUpdate(BaseModel):
    """A partial update: only the fields present change. ``drop_websockets`` is an action."""

    model_config = ConfigDict(extra="forbid")

    history_delay_seconds: float | None = Field(default=None, ge=0.0)
    suppress_websocket_messages: bool | None = None
    node_error: NodeErrorFault | None = None
    node_delay_seconds: float | None = Field(default=None, ge=0.0)
    reject_prompts_with_status: int | None = Field(default=None, ge=400, le=599)
    drop_websockets: bool = False

    def apply(self, faults: Faults) -> Faults:
        """The faults after this update; an explicit ``null`` clears a nullable fault."""
        changes = self.model_dump(include=self.model_fields_set - {"drop_websockets"})
        for key in ("history_delay_seconds", "suppress_websocket_messages"):
            if key in changes and changes[key] is None:
                changes[key] = Faults.model_fields[key].default
        return Faults.model_validate({**faults.model_dump(), **changes})


class RestartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    downtime_seconds: float = Field(
        default=0.0,
        ge=0.0,
        le=300.0,
        description="After the restart, answer 503 to everything but /sim for this long.",
    )


class ModelsUpdate(BaseModel):
    """Installed model files per folder; each folder named replaces that folder's list."""

    model_config = ConfigDict(extra="forbid")

    checkpoints: list[str] | None = None
    loras: list[str] | None = None
    vae: list[str] | None = None
