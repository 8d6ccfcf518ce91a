"""Research exports under /api/exports (researcher role), served by export-service.

The gateway validates the request body against the shared contract, then passes requests
and streamed bodies (archives, SSE) through; Range and the redirect to an S3 presigned URL
travel unchanged.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from kiln_common.params import ExportIdPath
from kiln_common.proxy import pass_through
from kiln_contracts.errors import ErrorBody
from kiln_contracts.exports import ExportAccepted, ExportRequest, ExportStatus

from kiln_gateway.auth import require_researcher
from kiln_gateway.deps import StateDep

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 410, 422, 502, 503, 504)
}

# Every route here needs the researcher role (ResearcherDep's check, for the whole router).
router = APIRouter(
    prefix="/api/exports",
    tags=["exports"],
    responses=ERRORS,
    dependencies=[Depends(require_researcher)],
)


@router.post("", status_code=202, response_model=ExportAccepted)
async def create_export(body: ExportRequest, state: StateDep) -> Any:
    """Start a background export of the runs the filter selects (a BagIt bag, zip or tar.gz)."""
    response = await state.export.request("POST", "/exports", json=body.model_dump(mode="json"))
    return response.json()


@router.get(
    "/stream",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}, "application/gzip": {}}}},
)
async def stream_export(request: Request, state: StateDep) -> Response:
    """A small selection streamed at once. Query: run_id (repeatable), since, until, device_id,
    session_id, workflow, status, format (zip|tar.gz), blocked (true to include blocked media)."""
    query = request.url.query
    return await pass_through(state.export, f"/exports/stream?{query}", request)


@router.get("/{export_id}", response_model=ExportStatus)
async def get_export(export_id: ExportIdPath, state: StateDep) -> Any:
    return await state.export.get_json(f"/exports/{export_id}")


@router.get(
    "/{export_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def export_events(export_id: ExportIdPath, request: Request, state: StateDep) -> Response:
    """Server-sent events: the status first, then progress, ending after completed or failed."""
    return await pass_through(state.export, f"/exports/{export_id}/events", request)


@router.get(
    "/{export_id}/download",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}, 206: {}, 307: {}},
)
async def download_export(export_id: ExportIdPath, request: Request, state: StateDep) -> Response:
    """The archive, with Range; for an S3 export, a redirect to its presigned URL."""
    return await pass_through(state.export, f"/exports/{export_id}/download", request)
