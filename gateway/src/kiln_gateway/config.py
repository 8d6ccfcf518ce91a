from __future__ import annotations

from pathlib import Path

from kiln_common.settings import KilnSettings
from pydantic import Field, SecretStr


class GatewaySettings(KilnSettings):
    media_url: str
    pipeline_url: str
    export_url: str
    gateway_max_input_chars: int = Field(default=4000, ge=1, le=100_000)
    gateway_upstream_timeout_seconds: float = Field(default=10, gt=0)
    gateway_catalog_ttl_seconds: float = Field(default=10, ge=0)
    researcher_token: SecretStr | None = None
    researcher_token_file: Path | None = None
