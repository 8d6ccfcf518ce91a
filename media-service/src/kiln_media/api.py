"""HTTP API of media-service (internal; the gateway exposes it under /api/)."""

from __future__ import annotations

import logging
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from importlib.metadata import version
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse, Response, StreamingResponse
from kiln_common.errors import error_response
from kiln_common.params import EntityFilenamePath, RunIdPath
from kiln_contracts.api import (
    BlockEntityBody,
    CreateRunBody,
    DeletionReport,
    DeletionRequest,
    RunPage,
    ServiceInfo,
)
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import RunFailed
from kiln_contracts.ids import parse_run_id
from kiln_contracts.records import Entity, RunError, RunRecord, RunStatus
from kiln_storage.index import RunFilter
from starlette.concurrency import iterate_in_threadpool
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from kiln_media.catalog import Deletion, RunCatalog, StoredFile, parse_instant
from kiln_media.deps import CatalogDep, ServiceDep, StateDep
from kiln_media.errors import MediaError

logger = logging.getLogger("kiln.media.api")
router = APIRouter()


@router.post("/runs", status_code=201, response_model=RunRecord)
async def create_run(body: CreateRunBody, service: ServiceDep) -> RunRecord:
    run_id = parse_run_id(body.run_id)
    try:
        return await service.create_run(run_id, body.request)
    except OSError as exc:
        raise MediaError(
            ErrorCode.STORAGE_UNAVAILABLE, f"could not create run: {exc}", 503
        ) from exc


@router.get("/runs/{run_id}", response_model=RunRecord)
async def get_run(run_id: RunIdPath, service: ServiceDep) -> RunRecord:
    return await service.get_run(run_id)


@router.post("/runs/{run_id}/fail", response_model=RunRecord)
async def fail_run(run_id: RunIdPath, body: RunError, service: ServiceDep) -> RunRecord:
    """Record a failure that happened before the run reached NATS (gateway only)."""
    return await service.record_failure(RunFailed.of(run_id, body))


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _not_modified_since(header: str, created_at: datetime) -> bool:
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False  # an unparseable date is ignored, as RFC 9110 asks
    return since.tzinfo is not None and created_at.replace(microsecond=0) <= since


def _serve(request: Request, stored: StoredFile, catalog: RunCatalog) -> Response:
    """An entity with validators and caching headers; 304, 206 (Range) and 451 (blocked)."""
    entity = stored.entity
    if entity.blocked is not None:
        raise MediaError(
            ErrorCode.BLOCKED,
            f"{entity.filename} of run {stored.run_id} is blocked: {entity.blocked.reason}",
            451,
        )
    etag = f'"{entity.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=31536000, immutable",
        "Last-Modified": format_datetime(entity.created_at, usegmt=True),
    }
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
    elif (since := request.headers.get("if-modified-since")) and _not_modified_since(
        since, entity.created_at
    ):
        return Response(status_code=304, headers=headers)
    byte_range = request.headers.get("range")
    ranges: list[tuple[int, int]] = []
    if byte_range is not None:
        # Starlette answers bad ranges in plain text; check first so errors stay JSON.
        try:
            ranges = FileResponse._parse_range_header(byte_range, entity.size)
        except MalformedRangeHeader as exc:
            raise MediaError(ErrorCode.INVALID_REQUEST, exc.content, 400) from None
        except RangeNotSatisfiable:
            return error_response(
                416,
                ErrorCode.RANGE_NOT_SATISFIABLE,
                f"{byte_range!r} is outside {entity.filename} ({entity.size} bytes)"[:300],
                {"Content-Range": f"bytes */{entity.size}"},
            )
    if stored.path is not None:
        return LargeChunkFileResponse(stored.path, media_type=entity.mime, headers=headers)
    # No local file (S3): stream it, honouring one range (several get the whole file).
    if_range = request.headers.get("if-range")
    start, end, status = 0, entity.size, 200
    if len(ranges) == 1 and (if_range is None or if_range == etag):
        (start, end), status = ranges[0], 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{entity.size}"
    headers["Content-Length"] = str(end - start)
    headers["Accept-Ranges"] = "bytes"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=entity.mime)
    return StreamingResponse(
        iterate_in_threadpool(catalog.stream(stored, start, end)),
        status_code=status,
        headers=headers,
        media_type=entity.mime,
    )


class LargeChunkFileResponse(FileResponse):
    """Reads in 1 MiB chunks (Starlette's default is 64 KiB): each chunk is a hop to a worker
    thread, and media files are large. Servers with ``pathsend`` skip this path entirely."""

    chunk_size = 1024 * 1024


@router.api_route("/runs/{run_id}/files/{filename}", methods=["GET", "HEAD"], response_model=None)
async def get_file(
    run_id: RunIdPath, filename: EntityFilenamePath, request: Request, catalog: CatalogDep
) -> Response:
    return _serve(request, await catalog.entity_file(run_id, filename), catalog)


@router.api_route("/media/{kind}/{run_id}", methods=["GET", "HEAD"], response_model=None)
async def get_newest_media(
    kind: str, run_id: RunIdPath, request: Request, catalog: CatalogDep
) -> Response:
    """The newest output of a kind (image, audio, video): the replaced system's URLs."""
    return _serve(request, await catalog.media(kind, run_id, None), catalog)


@router.api_route("/media/{kind}/{run_id}/{index}", methods=["GET", "HEAD"], response_model=None)
async def get_media(
    kind: str,
    run_id: RunIdPath,
    index: Annotated[int, FastApiPath(ge=0, le=9999)],
    request: Request,
    catalog: CatalogDep,
) -> Response:
    """The ``index``-th output of a kind, 0-based in the order they were stored."""
    return _serve(request, await catalog.media(kind, run_id, index), catalog)


@router.put("/runs/{run_id}/entities/{filename}/block", response_model=Entity)
async def block_entity(
    run_id: RunIdPath, filename: EntityFilenamePath, body: BlockEntityBody, catalog: CatalogDep
) -> Entity:
    """Researcher only (the gateway checks): never served again, kept for research."""
    return await catalog.set_blocked(run_id, filename, body.reason)


@router.delete("/runs/{run_id}/entities/{filename}/block", response_model=Entity)
async def unblock_entity(
    run_id: RunIdPath, filename: EntityFilenamePath, catalog: CatalogDep
) -> Entity:
    return await catalog.set_blocked(run_id, filename, None)


@router.get("/runs", response_model=RunPage)
async def list_runs(
    catalog: CatalogDep,
    since: Annotated[
        str | None,
        Query(description="ISO-8601 with zone, inclusive; compared with the instant in the run id"),
    ] = None,
    until: Annotated[
        str | None,
        Query(description="ISO-8601 with zone, exclusive; compared with the instant in the run id"),
    ] = None,
    device_id: Annotated[str | None, Query(max_length=200)] = None,
    session_id: Annotated[str | None, Query(max_length=200)] = None,
    workflow: Annotated[str | None, Query(max_length=200)] = None,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Runs newest first. ``next_cursor`` stays valid however many runs arrive meanwhile.

    The body is a RunPage whose items are the stored records, sent as stored (no re-encoding).
    """
    where = RunFilter(
        status=status.value if status else None,
        workflow=workflow,
        device_id=device_id,
        session_id=session_id,
        since=parse_instant(since) if since else None,
        until=parse_instant(until) if until else None,
    )
    body = await catalog.list_runs(where, limit, cursor)
    return Response(body, media_type="application/json")


@router.delete("/runs/{run_id}", response_model=DeletionReport)
async def delete_run(run_id: RunIdPath, catalog: CatalogDep, state: StateDep) -> DeletionReport:
    """Delete one run's folder; the deletion is written to the audit log on the root."""
    return await catalog.delete_run(
        run_id, Deletion(reason="request", actor=state.settings.instance_id)
    )


@router.post("/deletions", response_model=DeletionReport)
async def delete_runs(
    body: DeletionRequest, catalog: CatalogDep, state: StateDep
) -> DeletionReport:
    """GDPR: delete every run of one device or of one session (exactly one of them)."""
    if (body.device_id is None) == (body.session_id is None):
        raise MediaError(
            ErrorCode.INVALID_REQUEST, "give exactly one of device_id and session_id", 422
        )
    if not (body.device_id or body.session_id or "").strip():
        raise MediaError(ErrorCode.INVALID_REQUEST, "device_id/session_id is empty", 422)
    which = "device" if body.device_id is not None else "session"
    why = Deletion(reason=f"{which} request", actor=state.settings.instance_id)
    where = RunFilter(device_id=body.device_id, session_id=body.session_id)
    return await catalog.delete_matching(where, why)


@router.get("/system", response_model=ServiceInfo)
async def system(state: StateDep) -> ServiceInfo:
    return ServiceInfo(
        service="media-service",
        instance_id=state.settings.instance_id,
        version=version("kiln-media"),
        storage_id=state.storage_id,
        storage_root=state.settings.storage_location,
    )
