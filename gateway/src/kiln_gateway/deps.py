from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from kiln_contracts.errors import ErrorCode
from kiln_contracts.ids import InvalidRunIdError, parse_run_id
from kiln_contracts.layout import InvalidFilenameError, parse_entity_filename

from kiln_gateway.errors import GatewayError
from kiln_gateway.state import GatewayState


def get_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


def valid_run_id(run_id: Annotated[str, Path(description="Run id (UUIDv7, lowercase)")]) -> str:
    try:
        return parse_run_id(run_id)
    except InvalidRunIdError as exc:
        raise GatewayError(ErrorCode.INVALID_RUN_ID, str(exc), 400) from None


def valid_filename(
    filename: Annotated[str, Path(description="Entity filename, e.g. 03_output_image.png")],
) -> str:
    try:
        return parse_entity_filename(filename)
    except InvalidFilenameError as exc:
        raise GatewayError(ErrorCode.INVALID_FILENAME, str(exc), 400) from None


StateDep = Annotated[GatewayState, Depends(get_state)]
RunIdDep = Annotated[str, Depends(valid_run_id)]
FilenameDep = Annotated[str, Depends(valid_filename)]
