"""Request-scoped access to what the lifespan built."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from kiln_contracts.exports import ExportErrorCode, InvalidExportIdError, parse_export_id

from kiln_export.errors import ExportServiceError
from kiln_export.state import ExportServiceState


def get_state(request: Request) -> ExportServiceState:
    state: ExportServiceState = request.app.state.export
    return state


def valid_export_id(export_id: Annotated[str, Path()]) -> str:
    try:
        return parse_export_id(export_id)
    except InvalidExportIdError as exc:
        raise ExportServiceError(ExportErrorCode.INVALID_EXPORT_ID, str(exc), 400) from None


StateDep = Annotated[ExportServiceState, Depends(get_state)]
ExportIdDep = Annotated[str, Depends(valid_export_id)]
