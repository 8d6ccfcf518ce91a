"""The workflow catalogue, read from pipeline-service (which owns the templates) and cached
briefly, so requests are validated before anything is created or queued."""

from __future__ import annotations

import asyncio
import time

from kiln_common.proxy import Upstream
from kiln_contracts.workflows import WorkflowManifest


class WorkflowCatalog:
    def __init__(self, pipeline: Upstream, ttl_seconds: float) -> None:
        self.pipeline = pipeline
        self.ttl_seconds = ttl_seconds
        self._manifests: dict[str, WorkflowManifest] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def manifests(self) -> dict[str, WorkflowManifest]:
        async with self._lock:
            if time.monotonic() - self._fetched_at > self.ttl_seconds:
                raw = await self.pipeline.get_json("/manifests")
                manifests = [WorkflowManifest.model_validate(m) for m in raw]
                self._manifests = {m.name: m for m in manifests}
                self._fetched_at = time.monotonic()
            return self._manifests

    async def get(self, name: str) -> WorkflowManifest | None:
        return (await self.manifests()).get(name)
