from __future__ import annotations

from kiln_common.settings import AbsolutePath, KilnSettings
from pydantic import Field


class MediaSettings(KilnSettings):
    storage_root: AbsolutePath
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
    # KILN_RETENTION_DAYS: runs older than this are deleted by a periodic job; unset keeps all.
    retention_days: int | None = Field(default=None, ge=1)
    retention_interval_seconds: float = Field(default=3600, gt=0)
