from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NatsClient

from kiln_media.catalog import RunCatalog
from kiln_media.config import MediaSettings
from kiln_media.service import MediaService


@dataclass
class MediaState:
    settings: MediaSettings
    service: MediaService
    storage_id: str
    nc: NatsClient
    catalog: RunCatalog
