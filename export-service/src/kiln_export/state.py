from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NatsClient

from kiln_export.config import ExportSettings
from kiln_export.jobs import ExportJobs


@dataclass
class ExportServiceState:
    settings: ExportSettings
    nc: NatsClient
    jobs: ExportJobs
