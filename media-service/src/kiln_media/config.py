from __future__ import annotations

from typing import Self

from kiln_common.settings import AbsolutePath, KilnSettings
from pydantic import Field, model_validator


class MediaSettings(KilnSettings):
    # KILN_STORAGE_URL=s3://bucket/prefix puts the root on S3 (keys, region and endpoint from
    # the standard AWS_* environment); otherwise KILN_STORAGE_ROOT is a directory.
    storage_root: AbsolutePath | None = None
    storage_url: str | None = Field(default=None, pattern=r"^s3://[^/]+(/.*)?$")
    media_spool_dir: AbsolutePath | None = Field(
        default=None, description="Where outputs are staged before upload to S3 (default: tmp)."
    )
    media_fetch_attempts: int = Field(default=4, ge=1, le=20)
    media_fetch_timeout_seconds: float = Field(default=30, gt=0)
    media_consumer_concurrency: int = Field(default=8, ge=1, le=256)
    # The listing index: a file of this replica's own (never on the shared root), or memory.
    media_index_path: AbsolutePath | None = None
    # How often the index re-reads what other replicas changed: the last two days' folders
    # often (where runs are written), the whole root rarely (old runs change only when blocked
    # or deleted, and a listing re-checks every run it shows anyway).
    media_index_sync_seconds: float = Field(default=5, gt=0)
    media_index_full_sync_seconds: float = Field(default=900, gt=0)
    # Temp files a crash left (in run folders, or the S3 spool) are removed at start-up once
    # untouched this long; younger ones may belong to another replica still writing them.
    media_debris_grace_seconds: float = Field(default=3600, ge=0)
    # KILN_RETENTION_DAYS: runs older than this are deleted by a periodic job; unset keeps all.
    retention_days: int | None = Field(default=None, ge=1)
    retention_interval_seconds: float = Field(default=3600, gt=0)

    @model_validator(mode="after")
    def _one_root(self) -> Self:
        if self.storage_url is None and self.storage_root is None:
            raise ValueError("set KILN_STORAGE_ROOT (a directory) or KILN_STORAGE_URL (s3://…)")
        return self

    @property
    def storage_location(self) -> str:
        return self.storage_url or str(self.storage_root)
