"""Request-scoped access to what the lifespan built."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kiln_export.state import ExportServiceState


def get_state(request: Request) -> ExportServiceState:
    state: ExportServiceState = request.app.state.export
    return state


StateDep = Annotated[ExportServiceState, Depends(get_state)]
