from __future__ import annotations

from dataclasses import dataclass

from kiln_contracts.layout import STORAGE_ID_FILE
from nats.aio.client import Client as NatsClient

from kiln_export.config import ExportSettings
from kiln_export.jobs import ExportJobs
from kiln_export.ports import ExportEventFeed


@dataclass
class ExportServiceState:
    settings: ExportSettings
    nc: NatsClient  # read by the readiness check only
    jobs: ExportJobs
    events: ExportEventFeed

    def read_storage_id(self) -> str | None:
        """The id media-service wrote into the storage root; None until it has (blocking)."""
        path = self.settings.storage_root / STORAGE_ID_FILE
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            return None
