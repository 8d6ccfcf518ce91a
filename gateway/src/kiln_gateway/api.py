"""The public HTTP API under /api."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from importlib.metadata import version
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse
from kiln_common.nats import NATS_ERRORS
from kiln_common.params import EntityFilenamePath, RunIdPath
from kiln_common.proxy import UpstreamError, pass_through, relay
from kiln_common.sse import sse_response
from kiln_contracts.api import (
    BlockEntityBody,
    DeletionReport,
    DeletionRequest,
    RunPage,
    ServiceInfo,
)
from kiln_contracts.errors import ErrorBody, ErrorCode
from kiln_contracts.records import RunRecord, RunStatus
from kiln_contracts.workflows import WorkflowSummary
from pydantic import JsonValue

from kiln_gateway.auth import Caller, CallerDep, ResearcherDep
from kiln_gateway.deps import StateDep
from kiln_gateway.errors import GatewayError
from kiln_gateway.events import RunEventStream
from kiln_gateway.models import CreateRunRequest, RunAccepted, SystemReport, WhoAmI
from kiln_gateway.runs import Origin
from kiln_gateway.sessions import CreateSessionRequest, JoinSessionRequest, WorkshopSession
from kiln_gateway.state import GatewayState

MediaKind = Literal["image", "audio", "video"]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 502, 503, 504)
}
_MEDIA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    },
    206: {"description": "Partial content (Range)."},
    304: {"description": "Not modified (If-None-Match)."},
    451: {"model": ErrorBody, "description": "Blocked by a researcher."},
}

logger = logging.getLogger("kiln.gateway.api")

router = APIRouter(prefix="/api", responses=ERRORS)


async def _origin(state: GatewayState, caller: Caller) -> Origin:
    session = None
    if caller.identity.session_id:
        session = await state.sessions.get(caller.identity.session_id)
    return Origin(
        device_id=caller.identity.device_id,
        session_id=session.session_id if session else None,
        safety_level=session.safety_level
        if session
        else state.settings.gateway_default_safety_level,
    )


async def _visible_record(state: GatewayState, caller: Caller, run_id: str) -> RunRecord:
    """The run's record if this caller may see it; a participant asking for another device's
    run hears the same 404 as for a run that does not exist."""
    record = RunRecord.model_validate(await state.media.get_json(f"/runs/{run_id}"))
    if not caller.may_see(record.request):
        raise GatewayError(ErrorCode.RUN_NOT_FOUND, f"no run {run_id} on this storage root", 404)
    return record


RUN_OWNERS_CACHED = 10_000


async def _check_may_see(state: GatewayState, caller: Caller, run_id: str) -> None:
    """The visibility check of ``_visible_record`` for routes that need only the answer. A run's
    device and session never change, so they are remembered (bounded, least recently used);
    a run deleted meanwhile is still a 404 from media-service, a blocked file still a 451."""
    owner = state.run_owners.get(run_id)
    if owner is None:
        owner = (await _visible_record(state, caller, run_id)).request
        state.run_owners[run_id] = owner
        if len(state.run_owners) > RUN_OWNERS_CACHED:
            state.run_owners.popitem(last=False)
        return
    state.run_owners.move_to_end(run_id)
    if not caller.may_see(owner):
        raise GatewayError(ErrorCode.RUN_NOT_FOUND, f"no run {run_id} on this storage root", 404)


@router.post(
    "/runs",
    status_code=202,
    response_model=RunAccepted,
    tags=["runs"],
    responses={429: {"model": ErrorBody, "description": "Too many runs; see Retry-After."}},
)
async def create_run(
    body: CreateRunRequest,
    state: StateDep,
    caller: CallerDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=255,
            description="Repeat a request safely: the same key and body within 24 h return "
            "the same run; the same key with another body is a 409.",
        ),
    ] = None,
) -> RunAccepted:
    """Start a run. The run exists on storage before this answers."""
    origin = await _origin(state, caller)
    return await state.creator.create(body, origin, idempotency_key)


@router.get("/runs", response_model=RunPage, tags=["runs"])
async def list_runs(
    state: StateDep,
    caller: CallerDep,
    since: Annotated[datetime | None, Query(description="Created at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Created before (ISO 8601).")] = None,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    workflow: Annotated[str | None, Query(max_length=64)] = None,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    """Runs, newest first. Participants see their own device's runs, or their workshop
    session's while they are in one; researchers see every run and may filter by device and
    session."""
    query: dict[str, str] = {"limit": str(limit)}
    for name, value in (
        ("since", since),
        ("until", until),
        ("workflow", workflow),
        ("status", status),
        ("cursor", cursor),
    ):
        if value is not None:
            query[name] = value.isoformat() if isinstance(value, datetime) else str(value)
    if caller.researcher:
        if device_id is not None:
            query["device_id"] = device_id
        if session_id is not None:
            query["session_id"] = session_id
    elif caller.identity.session_id:
        query["session_id"] = caller.identity.session_id
    else:
        query["device_id"] = caller.identity.device_id
    return relay(await state.media.request("GET", "/runs", params=query))


@router.get("/runs/{run_id}", response_model=RunRecord, tags=["runs"])
async def get_run(run_id: RunIdPath, state: StateDep, caller: CallerDep) -> RunRecord:
    return await _visible_record(state, caller, run_id)


@router.post("/runs/{run_id}/cancel", status_code=202, response_model=RunAccepted, tags=["runs"])
async def cancel_run(run_id: RunIdPath, state: StateDep, caller: CallerDep) -> RunAccepted:
    """Stop the run. One still waiting in the backlog is cancelled at once (the answer says
    ``cancelled``); one a pipeline has taken is stopped on ComfyUI, which must confirm it (the
    run shows a ``cancelling`` event meanwhile, and its record says what the backend did)."""
    await _visible_record(state, caller, run_id)
    return await state.creator.cancel(run_id)


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    tags=["runs"],
    responses={
        200: {
            "description": "Server-Sent Events: ``state`` (first the whole record, then each "
            "change; ``id`` is a resumable position) and ``progress``; ends after a final state.",
            "content": {
                "text/event-stream": {
                    "schema": {"type": "string"},
                    "example": 'event: state\nid: 42\ndata: {"run_id": "…", "status": '
                    '"running", "event": "started", "at": "…"}\n\n',
                }
            },
        }
    },
)
async def run_events(
    run_id: RunIdPath,
    state: StateDep,
    caller: CallerDep,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", max_length=20, description="Resume after this event."),
    ] = None,
) -> StreamingResponse:
    """Live state and progress of one run. Any gateway replica serves any run."""
    resume_after = None
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise GatewayError(
                ErrorCode.INVALID_REQUEST, "Last-Event-ID must be an event id from this stream", 400
            )
        resume_after = int(last_event_id)
    stream = RunEventStream(
        state.nc, state.js, run_id, state.settings.gateway_sse_heartbeat_seconds
    )
    try:
        await stream.open(resume_after, lambda: _visible_record(state, caller, run_id))
    except NATS_ERRORS as exc:
        logger.error("could not subscribe to the run's events: %s", exc)
        raise GatewayError(
            ErrorCode.QUEUE_UNAVAILABLE, "live events are unavailable right now; try again", 503
        ) from exc
    return sse_response(stream.stream())


@router.get(
    "/runs/{run_id}/files/{filename}",
    response_class=Response,
    tags=["media"],
    responses=_MEDIA_RESPONSES,
)
async def get_file(
    run_id: RunIdPath,
    filename: EntityFilenamePath,
    request: Request,
    state: StateDep,
    caller: CallerDep,
) -> Response:
    """The stored bytes of one entity, straight from the storage root (never from ComfyUI)."""
    await _check_may_see(state, caller, run_id)
    return await pass_through(state.media, f"/runs/{run_id}/files/{filename}", request)


@router.get(
    "/media/{kind}/{run_id}", response_class=Response, tags=["media"], responses=_MEDIA_RESPONSES
)
async def get_newest_media(
    kind: MediaKind, run_id: RunIdPath, request: Request, state: StateDep, caller: CallerDep
) -> Response:
    """The run's newest output of a kind (the replaced system's URLs)."""
    await _check_may_see(state, caller, run_id)
    return await pass_through(state.media, f"/media/{kind}/{run_id}", request)


@router.get(
    "/media/{kind}/{run_id}/{index}",
    response_class=Response,
    tags=["media"],
    responses=_MEDIA_RESPONSES,
)
async def get_media(
    kind: MediaKind,
    run_id: RunIdPath,
    index: Annotated[int, PathParam(ge=0, le=9999, description="0 is the first output")],
    request: Request,
    state: StateDep,
    caller: CallerDep,
) -> Response:
    """One output of a kind by its position among the run's outputs of that kind."""
    await _check_may_see(state, caller, run_id)
    return await pass_through(state.media, f"/media/{kind}/{run_id}/{index}", request)


@router.put(
    "/runs/{run_id}/entities/{filename}/block",
    tags=["research"],
    responses={200: {"description": "The entity is blocked.", "model": dict[str, JsonValue]}},
)
async def block_entity(
    run_id: RunIdPath,
    filename: EntityFilenamePath,
    body: BlockEntityBody,
    state: StateDep,
    _: ResearcherDep,
) -> Response:
    """Researcher only: never serve this entity again (451), but keep it for research."""
    path = f"/runs/{run_id}/entities/{filename}/block"
    return relay(await state.media.request("PUT", path, json=body.model_dump()))


@router.delete(
    "/runs/{run_id}/entities/{filename}/block",
    tags=["research"],
    responses={200: {"description": "The entity is served again.", "model": dict[str, JsonValue]}},
)
async def unblock_entity(
    run_id: RunIdPath, filename: EntityFilenamePath, state: StateDep, _: ResearcherDep
) -> Response:
    """Researcher only: lift a block."""
    return relay(await state.media.request("DELETE", f"/runs/{run_id}/entities/{filename}/block"))


@router.delete(
    "/runs/{run_id}",
    tags=["research"],
    responses={
        200: {"model": DeletionReport, "description": "Deleted."},
        204: {"description": "Deleted."},
    },
)
async def delete_run(run_id: RunIdPath, state: StateDep, _: ResearcherDep) -> Response:
    """Researcher only: delete one run and its folder (recorded in the audit log)."""
    return relay(await state.media.request("DELETE", f"/runs/{run_id}"))


@router.post("/deletions", response_model=DeletionReport, tags=["research"])
async def delete_runs_of(body: DeletionRequest, state: StateDep, _: ResearcherDep) -> Response:
    """Researcher only: GDPR deletion of every run of one device or one workshop session."""
    if (body.device_id is None) == (body.session_id is None):
        raise GatewayError(
            ErrorCode.INVALID_REQUEST, "name exactly one of device_id and session_id", 422
        )
    return relay(await state.media.request("POST", "/deletions", json=body.model_dump()))


@router.post("/sessions", status_code=201, response_model=WorkshopSession, tags=["sessions"])
async def open_session(
    body: CreateSessionRequest, state: StateDep, _: ResearcherDep
) -> WorkshopSession:
    """Researcher only: open a workshop session; participants join it with its short code."""
    return await state.sessions.create(body)


@router.post("/sessions/join", response_model=WorkshopSession, tags=["sessions"])
async def join_session(
    body: JoinSessionRequest, request: Request, state: StateDep, caller: CallerDep
) -> WorkshopSession:
    """Join a workshop session by its code: this device's runs belong to it from now on, and
    the session's settings (its safety level) apply to them."""
    session = await state.sessions.join(body.code)
    request.state.identity = caller.identity.with_session(session.session_id)
    await state.sessions.record_member(session.session_id, caller.identity.device_id)
    return session


@router.get("/me", response_model=WhoAmI, tags=["sessions"])
async def who_am_i(state: StateDep, caller: CallerDep) -> WhoAmI:
    session = None
    if caller.identity.session_id:
        session = await state.sessions.get(caller.identity.session_id)
    return WhoAmI(
        device_id=caller.identity.device_id, session=session, researcher=caller.researcher
    )


@router.get("/workflows", response_model=list[WorkflowSummary], tags=["workflows"])
async def list_workflows(state: StateDep) -> list[WorkflowSummary]:
    manifests = await state.catalog.manifests()
    return [WorkflowSummary.of(m) for m in manifests.values()]


@router.get("/system", response_model=SystemReport, tags=["system"])
async def system(state: StateDep) -> SystemReport:
    """Each service's instance id, version and storage root id (docs/design.md §2.2)."""
    gateway = ServiceInfo(
        service="gateway", instance_id=state.settings.instance_id, version=version("kiln-gateway")
    )
    services: list[dict[str, Any]] = [gateway.model_dump(mode="json")]

    async def ask(name: str, call: Any) -> dict[str, Any]:
        try:
            info = ServiceInfo.model_validate(await call("/system"))
            return info.model_dump(mode="json")
        except UpstreamError as exc:
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
