from __future__ import annotations

from kiln_common.settings import AbsolutePath, KilnSettings


class ExportSettings(KilnSettings):
    storage_root: AbsolutePath
