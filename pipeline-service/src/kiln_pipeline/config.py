from __future__ import annotations

from typing import Annotated

from kiln_common.settings import KilnSettings, UrlList, split_urls
from pydantic import BeforeValidator, Field, field_validator


class PipelineSettings(KilnSettings):
    comfyui_urls: Annotated[UrlList, BeforeValidator(split_urls)]
    pipeline_max_in_flight_per_backend: int = Field(default=4, ge=1, le=256)
    pipeline_poll_initial_seconds: float = Field(default=0.25, gt=0)
    pipeline_poll_max_seconds: float = Field(default=2.0, gt=0)

    @field_validator("comfyui_urls")
    @classmethod
    def _need_one(cls, urls: list[str]) -> list[str]:
        if not urls:
            raise ValueError("name at least one ComfyUI server (comma-separated URLs)")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"not an http(s) URL: {url!r}")
        return urls
