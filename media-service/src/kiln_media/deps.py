"""Request-scoped access to what the lifespan built."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from kiln_contracts.errors import ErrorCode
from kiln_contracts.ids import InvalidRunIdError, parse_run_id

from kiln_media.catalog import RunCatalog
from kiln_media.errors import MediaError
from kiln_media.service import MediaService
from kiln_media.state import MediaState


def get_state(request: Request) -> MediaState:
    state: MediaState = request.app.state.media
    return state


def get_service(state: Annotated[MediaState, Depends(get_state)]) -> MediaService:
    return state.service


def get_catalog(state: Annotated[MediaState, Depends(get_state)]) -> RunCatalog:
    return state.catalog


def valid_run_id(run_id: Annotated[str, Path(description="Run id (UUIDv7)")]) -> str:
    try:
        return parse_run_id(run_id)
    except InvalidRunIdError as exc:
        raise MediaError(ErrorCode.INVALID_RUN_ID, str(exc), 400) from None


CatalogDep = Annotated[RunCatalog, Depends(get_catalog)]
ServiceDep = Annotated[MediaService, Depends(get_service)]
StateDep = Annotated[MediaState, Depends(get_state)]
RunIdDep = Annotated[str, Depends(valid_run_id)]
