"""HTTP API of media-service (internal; the gateway exposes it under /api/)."""

from __future__ import annotations

from email.utils import format_datetime
from importlib.metadata import version

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from kiln_contracts.api import CreateRunBody, FailRunBody, ServiceInfo
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import RunFailed
from kiln_contracts.ids import InvalidRunIdError, parse_run_id
from kiln_contracts.layout import InvalidFilenameError
from kiln_contracts.records import RunRecord, Stage
from kiln_storage.local import EntityNotFoundError, RunExistsError, RunNotFoundError, StorageError

from kiln_media.deps import RunIdDep, ServiceDep, StateDep
from kiln_media.errors import MediaError

router = APIRouter()


@router.post("/runs", status_code=201, response_model=RunRecord)
async def create_run(body: CreateRunBody, service: ServiceDep) -> RunRecord:
    try:
        run_id = parse_run_id(body.run_id)
        return await service.create_run(run_id, body.request)
    except InvalidRunIdError as exc:
        raise MediaError(ErrorCode.INVALID_RUN_ID, str(exc), 400) from None
    except RunExistsError as exc:
        raise MediaError(ErrorCode.RUN_EXISTS, str(exc), 409) from None
    except OSError as exc:
        raise MediaError(
            ErrorCode.STORAGE_UNAVAILABLE, f"could not create run: {exc}", 503
        ) from exc


@router.get("/runs/{run_id}", response_model=RunRecord)
async def get_run(run_id: RunIdDep, service: ServiceDep) -> RunRecord:
    try:
        return await service.get_run(run_id)
    except RunNotFoundError as exc:
        raise MediaError(ErrorCode.RUN_NOT_FOUND, str(exc), 404) from None


@router.post("/runs/{run_id}/fail", response_model=RunRecord)
async def fail_run(run_id: RunIdDep, body: FailRunBody, service: ServiceDep) -> RunRecord:
    """Record a failure that happened before the run reached NATS (gateway only)."""
    try:
        event = RunFailed(
            run_id=run_id,
            stage=Stage(body.stage),
            code=ErrorCode(body.code),
            message=body.message,
            retryable=body.retryable,
        )
    except ValueError as exc:
        raise MediaError(ErrorCode.INVALID_REQUEST, str(exc), 422) from None
    try:
        return await service.record_failure(event)
    except RunNotFoundError as exc:
        raise MediaError(ErrorCode.RUN_NOT_FOUND, str(exc), 404) from None


@router.get("/runs/{run_id}/files/{filename}", response_model=None)
async def get_file(
    run_id: RunIdDep, filename: str, request: Request, service: ServiceDep
) -> Response:
    try:
        path, entity = await anyio.to_thread.run_sync(service.store.entity_path, run_id, filename)
    except InvalidFilenameError as exc:
        raise MediaError(ErrorCode.INVALID_FILENAME, str(exc), 400) from None
    except RunNotFoundError as exc:
        raise MediaError(ErrorCode.RUN_NOT_FOUND, str(exc), 404) from None
    except EntityNotFoundError as exc:
        raise MediaError(ErrorCode.FILE_NOT_FOUND, str(exc), 404) from None
    except StorageError as exc:
        raise MediaError(ErrorCode.FILE_NOT_FOUND, str(exc), 404) from None
    etag = f'"{entity.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=31536000, immutable",
        "Last-Modified": format_datetime(entity.created_at, usegmt=True),
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=entity.mime, headers=headers)


@router.get("/system", response_model=ServiceInfo)
async def system(state: StateDep) -> ServiceInfo:
    return ServiceInfo(
        service="media-service",
        instance_id=state.settings.instance_id,
        version=version("kiln-media"),
        storage_id=state.storage_id,
        storage_root=str(state.settings.storage_root),
    )
