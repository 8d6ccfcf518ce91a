"""Request-scoped access to what the lifespan built."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kiln_media.catalog import RunCatalog
from kiln_media.service import MediaService
from kiln_media.state import MediaState


def get_state(request: Request) -> MediaState:
    state: MediaState = request.app.state.media
    return state


def get_service(state: Annotated[MediaState, Depends(get_state)]) -> MediaService:
    return state.service


def get_catalog(state: Annotated[MediaState, Depends(get_state)]) -> RunCatalog:
    return state.catalog


CatalogDep = Annotated[RunCatalog, Depends(get_catalog)]
ServiceDep = Annotated[MediaService, Depends(get_service)]
StateDep = Annotated[MediaState, Depends(get_state)]
