from __future__ import annotations

from datetime import timedelta

from kiln_common.settings import AbsolutePath, KilnSettings
from pydantic import Field, field_validator


class ExportSettings(KilnSettings):
    storage_root: AbsolutePath  # mounted read-only: export-service never writes here
    export_root: AbsolutePath  # archives and job records (a volume of its own)
    export_ttl: timedelta = Field(
        default=timedelta(days=7), description="KILN_EXPORT_TTL: seconds or ISO 8601 (P7D)."
    )
    export_cleanup_interval_seconds: float = Field(default=60, gt=0)
    export_stream_max_runs: int = Field(default=200, ge=1)
    export_max_bytes_per_second: int | None = Field(default=None, gt=0)
    export_concurrency: int = Field(default=2, ge=1, le=16)
    export_ack_wait_seconds: float = Field(default=30, gt=0)
    export_max_attempts: int = Field(default=3, ge=1)
    # S3 target (optional): s3://bucket/prefix; credentials from the usual AWS_* variables.
    export_s3_url: str | None = Field(
        default=None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"
    )
    export_s3_endpoint_url: str | None = None
    export_s3_region: str = "us-east-1"

    @field_validator("export_ttl", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        # KILN_EXPORT_TTL=86400 means seconds; pydantic alone reads only ISO 8601 from a string.
        if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return value
