from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client as NatsClient

from kiln_pipeline.config import PipelineSettings
from kiln_pipeline.pool import BackendPool
from kiln_pipeline.templates import WorkflowTemplate


@dataclass
class PipelineState:
    settings: PipelineSettings
    templates: dict[str, WorkflowTemplate]
    pool: BackendPool
    nc: NatsClient
