"""export-service's internal HTTP API (the gateway exposes it under /api/exports)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from importlib.metadata import version
from typing import Annotated

import anyio
import anyio.from_thread
from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from kiln_common.nats import NATS_ERRORS
from kiln_common.params import ExportIdPath
from kiln_common.sse import HEARTBEAT, sse_event, sse_response
from kiln_contracts.api import ServiceInfo
from kiln_contracts.errors import ErrorCode
from kiln_contracts.exports import (
    ExportAccepted,
    ExportCompleted,
    ExportErrorCode,
    ExportFailed,
    ExportFilter,
    ExportFormat,
    ExportInclude,
    ExportRequest,
    ExportRequested,
    ExportState,
    ExportStatus,
    new_export_id,
)
from kiln_contracts.records import RunStatus
from pydantic import ValidationError

from kiln_export.build import archive_name, build_export
from kiln_export.content import select_runs
from kiln_export.deps import StateDep
from kiln_export.errors import ExportServiceError
from kiln_export.state import ExportServiceState
from kiln_export.targets import S3Target

logger = logging.getLogger("kiln.export.api")

router = APIRouter()

HEARTBEAT_SECONDS = 5.0
STREAM_CHUNK = 256 * 1024


async def _status(state: ExportServiceState, export_id: str) -> ExportStatus:
    return await anyio.to_thread.run_sync(state.jobs.store.get, export_id)


@router.post("/exports", status_code=202, response_model=ExportAccepted)
async def create_export(body: ExportRequest, state: StateDep) -> ExportAccepted:
    if state.jobs.target(body) is None:
        raise ExportServiceError(
            ExportErrorCode.TARGET_UNAVAILABLE, "the S3 target is not configured here", 409
        )
    export_id = new_export_id()
    status = state.jobs.new_status(export_id, body)
    await anyio.to_thread.run_sync(state.jobs.store.save, status)
    try:
        await state.jobs.publish(ExportRequested(export_id=export_id, request=body))
    except NATS_ERRORS as exc:
        logger.error("could not queue export %s: %r", export_id, exc)
        await anyio.to_thread.run_sync(state.jobs.store.delete, export_id)
        raise ExportServiceError(
            ErrorCode.QUEUE_UNAVAILABLE, f"could not queue the export: {type(exc).__name__}", 503
        ) from None
    except Exception:
        # A bug, not an outage (a logged 500); no job record is left waiting for a message
        # that was never sent.
        await anyio.to_thread.run_sync(state.jobs.store.delete, export_id)
        raise
    logger.info("export %s queued", export_id, extra={"export_id": export_id})
    return ExportAccepted(
        export_id=export_id,
        state=ExportState.QUEUED,
        links={
            "self": f"/api/exports/{export_id}",
            "events": f"/api/exports/{export_id}/events",
            "download": f"/api/exports/{export_id}/download",
        },
    )


def _stream_filter(
    run_ids: list[str] | None,
    since: datetime | None,
    until: datetime | None,
    device_id: str | None,
    session_id: str | None,
    workflow: str | None,
    status: RunStatus | None,
) -> ExportFilter:
    try:
        return ExportFilter(
            run_ids=run_ids or None,
            since=since,
            until=until,
            device_id=device_id,
            session_id=session_id,
            workflow=workflow,
            status=status,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "filter"
        raise ExportServiceError(
            ErrorCode.INVALID_REQUEST, f"{where}: {first['msg']}", 422
        ) from None


@router.get("/exports/stream", response_class=StreamingResponse)
async def stream_export(
    state: StateDep,
    run_id: Annotated[list[str] | None, Query()] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    device_id: str | None = None,
    session_id: str | None = None,
    workflow: str | None = None,
    status: RunStatus | None = None,
    format: ExportFormat = ExportFormat.ZIP,
    blocked: bool = False,
) -> StreamingResponse:
    """A small selection, streamed at once as it is built. Integrity is checked as it goes;
    a mismatch ends the archive with ``EXPORT-FAILED.txt`` (naming the run and file) and
    without a ZIP central directory / gzip trailer, so no tool reads it as complete."""
    request = ExportRequest(
        filter=_stream_filter(run_id, since, until, device_id, session_id, workflow, status),
        format=format,
        include=ExportInclude(blocked=blocked),
    )
    settings = state.settings
    selection = await anyio.to_thread.run_sync(select_runs, settings.storage_root, request.filter)
    if len(selection.run_ids) > settings.export_stream_max_runs:
        raise ExportServiceError(
            ExportErrorCode.TOO_MANY_RUNS,
            f"{len(selection.run_ids)} runs match; streaming takes at most "
            f"{settings.export_stream_max_runs}: POST /api/exports for a background export",
            409,
        )
    export_id = new_export_id()
    send, receive = anyio.create_memory_object_stream[bytes](4)

    class ChannelSink:
        def __init__(self) -> None:
            self.buffer = bytearray()

        def write(self, data: bytes) -> None:
            self.buffer += data
            if len(self.buffer) >= STREAM_CHUNK:
                self.flush()

        def flush(self) -> None:
            if self.buffer:
                anyio.from_thread.run(send.send, bytes(self.buffer))
                self.buffer.clear()

    def produce() -> None:
        sink = ChannelSink()
        try:
            build_export(
                settings.storage_root,
                export_id,
                request,
                selection,
                sink,
                bytes_per_second=settings.export_max_bytes_per_second,
                mark_failure=True,
            )
        finally:
            sink.flush()  # what was written, including a failure note, reaches the client

    async def run_producer() -> None:
        async with send:
            await anyio.to_thread.run_sync(produce)

    async def body() -> AsyncIterator[bytes]:
        producer = asyncio.create_task(run_producer())
        try:
            async with receive:
                async for chunk in receive:
                    yield chunk
            await producer  # re-raises a failure of the build (after the bytes sent so far)
        except anyio.ClosedResourceError:
            pass
        except Exception:
            logger.exception("streamed export %s failed", export_id, extra={"export_id": export_id})
            raise
        finally:
            receive.close()
            if not producer.done():
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await producer

    filename = archive_name(export_id, request.format)
    return StreamingResponse(
        body(),
        media_type=request.format.media_type,
        headers={
            "content-disposition": f'attachment; filename="{filename}"',
            "x-kiln-export-id": export_id,
            "x-kiln-runs": str(len(selection.run_ids)),
        },
    )


@router.get("/exports/{export_id}", response_model=ExportStatus)
async def get_export(export_id: ExportIdPath, state: StateDep) -> ExportStatus:
    return await _status(state, export_id)


@router.get("/exports/{export_id}/events", response_class=StreamingResponse)
async def export_events(export_id: ExportIdPath, state: StateDep) -> StreamingResponse:
    """The current status first, then every progress event, until the export is final."""
    # Subscribe before reading the status, so nothing falls between the two.
    subscription = await state.events.subscribe(export_id)
    try:
        current = await _status(state, export_id)
    except BaseException:
        await subscription.close()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            yield sse_event("status", current.model_dump_json())
            if current.state.is_final:
                return
            while True:
                event = await subscription.next(HEARTBEAT_SECONDS)
                if event is None:
                    # Quiet for a while: check the record, so a lost event cannot hang us.
                    latest = await _status(state, export_id)
                    if latest.state.is_final:
                        yield sse_event(latest.state.value, latest.model_dump_json())
                        return
                    yield HEARTBEAT
                    continue
                yield sse_event(event.event_name.value, event.model_dump_json())
                if isinstance(event, ExportCompleted | ExportFailed):
                    return
        finally:
            await subscription.close()

    return sse_response(body())


@router.get("/exports/{export_id}/download", response_model=None)
async def download_export(export_id: ExportIdPath, state: StateDep) -> Response:
    status = await _status(state, export_id)
    if status.state is ExportState.FAILED:
        detail = status.error.message if status.error else "the export failed"
        raise ExportServiceError(ExportErrorCode.EXPORT_FAILED, detail, 409)
    if status.state is not ExportState.COMPLETED or status.filename is None:
        raise ExportServiceError(
            ExportErrorCode.EXPORT_NOT_READY,
            f"export {export_id} is {status.state.value} ({status.runs_done}/{status.runs_total} runs)",
            409,
        )
    target = state.jobs.target(status.request)
    if isinstance(target, S3Target):
        if status.download_url is None:
            raise ExportServiceError(ExportErrorCode.EXPORT_NOT_READY, "no download URL", 409)
        return RedirectResponse(status.download_url, status_code=307)
    path = state.jobs.volume.path(status.filename)
    if not path.is_file():
        raise ExportServiceError(
            ExportErrorCode.EXPORT_EXPIRED, f"the archive of export {export_id} is gone", 410
        )
    return FileResponse(
        path,
        media_type=status.request.format.media_type,
        filename=status.filename,
        headers={"etag": f'"{status.sha256}"', "cache-control": "private, immutable"},
    )


@router.get("/system", response_model=ServiceInfo)
async def system(state: StateDep) -> ServiceInfo:
    return ServiceInfo(
        service="export-service",
        instance_id=state.settings.instance_id,
        version=version("kiln-export"),
        storage_id=await anyio.to_thread.run_sync(state.read_storage_id),
        storage_root=str(state.settings.storage_root),
    )
