from __future__ import annotations

from pathlib import Path
from typing import Annotated

from kiln_common.settings import KilnSettings, UrlList, split_urls
from kiln_contracts.records import SafetyLevel
from pydantic import BeforeValidator, Field, SecretStr, field_validator


class GatewaySettings(KilnSettings):
    media_url: str
    pipeline_url: str
    export_url: str
    gateway_max_input_chars: int = Field(default=4000, ge=1, le=100_000)
    gateway_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    gateway_upstream_timeout_seconds: float = Field(default=10, gt=0)
    gateway_catalog_ttl_seconds: float = Field(default=10, ge=0)
    researcher_token: SecretStr | None = None
    researcher_token_file: Path | None = None
    # Participants: a signed, pseudonymous device cookie; no personal data in it.
    gateway_cookie_secret: SecretStr | None = None
    gateway_cookie_secret_file: Path | None = None
    gateway_cookie_secure: bool = False
    gateway_device_rotation_hours: float = Field(default=24 * 7, gt=0)
    gateway_session_hours: float = Field(default=12, gt=0, le=24 * 90)
    gateway_default_safety_level: SafetyLevel = SafetyLevel.KIDS
    # Safety: a directory whose default.json replaces the shipped policy and whose terms/*.json
    # extend the term lists (KILN_SAFETY_POLICY_DIR); a check slower than this gives no answer.
    safety_policy_dir: Path | None = None
    safety_check_timeout_seconds: float = Field(default=5, gt=0)
    # Limits.
    gateway_runs_per_device_per_minute: int = Field(default=20, ge=1)
    gateway_max_queue_depth: int = Field(default=1000, ge=1)
    gateway_queue_consumer: str = "pipeline"
    gateway_cors_origins: Annotated[UrlList, BeforeValidator(split_urls)]
    # Idempotency keys are remembered this long (NATS KV bucket TTL).
    gateway_idempotency_hours: float = Field(default=24, gt=0)
    # Live events.
    gateway_sse_heartbeat_seconds: float = Field(default=15, gt=0)
    # The address participants' tablets use (``http://192.168.1.20:8080``): join links and the
    # board's QR code name it. Unset: the address the request came to.
    gateway_public_url: str | None = None

    @field_validator("gateway_public_url")
    @classmethod
    def _http_origin(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {url!r}")
        return url.rstrip("/") if url else None
