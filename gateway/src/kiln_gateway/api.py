"""The public HTTP API under /api."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from kiln_common.errors import ServiceError
from kiln_contracts.api import ServiceInfo
from kiln_contracts.errors import ErrorBody
from kiln_contracts.records import RunRecord
from kiln_contracts.workflows import WorkflowSummary

from kiln_gateway.deps import FilenameDep, RunIdDep, StateDep
from kiln_gateway.models import CreateRunRequest, RunAccepted, SystemReport

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 404, 409, 422, 502, 503, 504)
}

router = APIRouter(prefix="/api", responses=ERRORS)

# Headers that make streamed media seekable and cacheable; passed through both ways.
_FORWARD_REQUEST_HEADERS = ("range", "if-none-match", "if-range", "if-modified-since")
_FORWARD_RESPONSE_HEADERS = (
    "content-type",
    "content-length",
    "content-range",
    "accept-ranges",
    "etag",
    "last-modified",
    "cache-control",
)


@router.post("/runs", status_code=202, response_model=RunAccepted, tags=["runs"])
async def create_run(body: CreateRunRequest, state: StateDep) -> RunAccepted:
    """Start a run. The run exists on storage before this answers."""
    return await state.creator.create(body)


@router.post("/runs/{run_id}/cancel", status_code=202, response_model=RunAccepted, tags=["runs"])
async def cancel_run(run_id: RunIdDep, state: StateDep) -> RunAccepted:
    """Ask the pipeline to stop the run; it ends ``cancelled`` unless it finishes first."""
    return await state.creator.cancel(run_id)


@router.get("/runs/{run_id}", response_model=RunRecord, tags=["runs"])
async def get_run(run_id: RunIdDep, state: StateDep) -> Any:
    return await state.media.get_json(f"/runs/{run_id}")


@router.get(
    "/runs/{run_id}/files/{filename}",
    response_class=Response,
    tags=["runs"],
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {}, 304: {}},
)
async def get_file(
    run_id: RunIdDep, filename: FilenameDep, request: Request, state: StateDep
) -> Response:
    """The stored bytes of one entity, straight from the storage root (never from ComfyUI)."""
    forward = {h: request.headers[h] for h in _FORWARD_REQUEST_HEADERS if h in request.headers}
    opened = state.media.stream(f"/runs/{run_id}/files/{filename}", forward)
    upstream = await opened.__aenter__()
    headers = {h: upstream.headers[h] for h in _FORWARD_RESPONSE_HEADERS if h in upstream.headers}

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw(256 * 1024):
                yield chunk
        finally:
            await opened.__aexit__(None, None, None)

    if upstream.status_code == 304:
        await opened.__aexit__(None, None, None)
        return Response(status_code=304, headers=headers)
    return StreamingResponse(body(), status_code=upstream.status_code, headers=headers)


@router.get("/workflows", response_model=list[WorkflowSummary], tags=["workflows"])
async def list_workflows(state: StateDep) -> list[WorkflowSummary]:
    manifests = await state.catalog.manifests()
    return [
        WorkflowSummary(name=m.name, title=m.title, kind=m.kind, params=m.params)
        for m in manifests.values()
    ]


@router.get("/system", response_model=SystemReport, tags=["system"])
async def system(state: StateDep) -> SystemReport:
    """Each service's instance id, version and storage root id (DESIGN §1.5)."""
    gateway = ServiceInfo(
        service="gateway", instance_id=state.settings.instance_id, version=version("kiln-gateway")
    )
    services: list[dict[str, Any]] = [gateway.model_dump(mode="json")]

    async def ask(name: str, call: Any) -> dict[str, Any]:
        try:
            info = ServiceInfo.model_validate(await call("/system"))
            return info.model_dump(mode="json")
        except ServiceError as exc:
            return {"service": name, "error": exc.code, "detail": exc.detail}

    services += await asyncio.gather(
        ask("media-service", state.media.get_json),
        ask("pipeline-service", state.pipeline.get_json),
        ask("export-service", state.export.get_json),
    )
    storage_ids = sorted({s["storage_id"] for s in services if s.get("storage_id")})
    return SystemReport(
        services=services, storage_ids=storage_ids, consistent=len(storage_ids) <= 1
    )
