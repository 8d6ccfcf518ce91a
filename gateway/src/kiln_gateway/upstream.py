"""The gateway's adapter for run records kept by media-service (the RunRecords port), over
the shared upstream client (kiln_common.proxy), whose errors carry honest statuses."""

from __future__ import annotations

from kiln_common.proxy import Upstream
from kiln_contracts.api import CreateRunBody
from kiln_contracts.records import RunError, RunRecord, RunRequest


class MediaRunRecords:
    """The run records, kept by media-service, over its internal HTTP API."""

    def __init__(self, media: Upstream) -> None:
        self.media = media

    async def create(self, run_id: str, request: RunRequest) -> RunRecord:
        body = CreateRunBody(run_id=run_id, request=request)
        response = await self.media.request("POST", "/runs", json=body.model_dump(mode="json"))
        return RunRecord.model_validate(response.json())

    async def get(self, run_id: str) -> RunRecord:
        return RunRecord.model_validate(await self.media.get_json(f"/runs/{run_id}"))

    async def fail(self, run_id: str, failure: RunError) -> None:
        await self.media.request(
            "POST", f"/runs/{run_id}/fail", json=failure.model_dump(mode="json")
        )
