from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from kiln_common.proxy import Upstream
from kiln_contracts.records import RunRequest
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from kiln_gateway.catalog import WorkflowCatalog
from kiln_gateway.config import GatewaySettings
from kiln_gateway.runs import RunCreator
from kiln_gateway.sessions import SessionStore


@dataclass
class GatewayState:
    settings: GatewaySettings
    nc: NatsClient
    js: JetStreamContext
    media: Upstream
    pipeline: Upstream
    export: Upstream
    catalog: WorkflowCatalog
    creator: RunCreator
    sessions: SessionStore
    researcher_token: str
    # Who a run belongs to never changes: files and media check it here instead of reading the
    # whole record from media-service on every request (bounded; see api._owner).
    run_owners: OrderedDict[str, RunRequest] = field(default_factory=OrderedDict)
