from __future__ import annotations

from pathlib import Path
from typing import Annotated

from kiln_common.settings import KilnSettings, UrlList, split_urls
from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import NoDecode


def _split_paths(value: object) -> object:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return value


class PipelineSettings(KilnSettings):
    comfyui_urls: Annotated[UrlList, BeforeValidator(split_urls)]
    pipeline_max_in_flight_per_backend: int = Field(default=4, ge=1, le=256)
    pipeline_poll_initial_seconds: float = Field(default=0.25, gt=0)
    pipeline_poll_max_seconds: float = Field(default=2.0, gt=0)
    pipeline_health_interval_seconds: float = Field(default=2.0, gt=0)
    pipeline_lost_grace_seconds: float = Field(default=5.0, gt=0)
    pipeline_backend_down_seconds: float = Field(default=10.0, gt=0)
    # How long a cancelled or timed-out prompt is followed for ComfyUI to confirm it is gone.
    pipeline_stop_confirm_seconds: float = Field(default=300.0, gt=0)
    # OpenAI-compatible chat endpoint for workflows with text stages; without it those
    # workflows are listed as unavailable and refused.
    llm_url: str | None = None
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    # Safety (as in the gateway): the policy directory and how long a check may take.
    safety_policy_dir: Path | None = None
    safety_check_timeout_seconds: float = Field(default=5, gt=0)
    # Directories with more templates (``*.manifest.json`` + ``*.json``) beside the built-in
    # ones: a deployment's own workflows, or test workflows with short deadlines.
    pipeline_workflows_dirs: Annotated[
        list[Path], NoDecode, BeforeValidator(_split_paths), Field(default_factory=list)
    ]

    @field_validator("comfyui_urls")
    @classmethod
    def _need_one(cls, urls: list[str]) -> list[str]:
        if not urls:
            raise ValueError("name at least one ComfyUI server (comma-separated URLs)")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"not an http(s) URL: {url!r}")
        return urls

    @field_validator("llm_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {url!r}")
        return url.rstrip("/") if url else None

    @field_validator("pipeline_workflows_dirs")
    @classmethod
    def _existing_dirs(cls, dirs: list[Path]) -> list[Path]:
        for directory in dirs:
            if not directory.is_absolute() or not directory.is_dir():
                raise ValueError(f"not an absolute path to a directory: {str(directory)!r}")
        return dirs
