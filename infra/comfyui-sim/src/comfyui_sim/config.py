"""Settings of the simulator, read from the environment (prefix ``COMFYUI_SIM_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_names(value: object) -> object:
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    return value


# A comma-separated list in the environment (``a.safetensors,b.safetensors``).
FileNames = Annotated[list[str], NoDecode, BeforeValidator(_split_names)]


class Settings(BaseSettings):
    """Where the simulator writes and how it behaves when no fault is set.

    ``output_dir`` is where Save nodes write (ComfyUI's ``output/``); ``temp_dir`` is where
    Preview nodes write (``temp/``); ``input_dir`` is what ``/view?type=input`` serves. Any of
    them left unset becomes a fresh temporary directory created at startup. ``checkpoints``,
    ``loras`` and ``vae`` are the model files the loader nodes offer (none by default, like a
    ComfyUI without models); ``/sim/models`` changes them at run time.
    """

    model_config = SettingsConfigDict(env_prefix="COMFYUI_SIM_", extra="ignore")

    output_dir: Path | None = None
    temp_dir: Path | None = None
    input_dir: Path | None = None
    node_delay_seconds: float = Field(default=0.0, ge=0.0)
    max_history: int = Field(default=10_000, ge=1)
    checkpoints: FileNames = Field(default_factory=list)
    loras: FileNames = Field(default_factory=list)
    vae: FileNames = Field(default_factory=list)
