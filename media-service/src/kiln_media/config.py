from __future__ import annotations

from kiln_common.settings import AbsolutePath, KilnSettings
from pydantic import Field


class MediaSettings(KilnSettings):
    storage_root: AbsolutePath
    media_fetch_attempts: int = Field(default=4, ge=1, le=20)
    media_fetch_timeout_seconds: float = Field(default=30, gt=0)
    media_consumer_concurrency: int = Field(default=8, ge=1, le=256)
