"""Path parameters validated once, the same way in every service.

A malformed id or name is refused before anything touches disk, NATS or another service: the
parse functions raise MappedErrors (400 with ``invalid_run_id``, ``invalid_filename`` or
``invalid_export_id``), answered by the one handler in kiln_common.errors; a malformed session
id fails its pattern (422 ``invalid_request``). A route names the type, never checks by hand:
``async def get_run(run_id: RunIdPath) -> …``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from kiln_contracts.exports import parse_export_id
from kiln_contracts.ids import parse_run_id
from kiln_contracts.layout import parse_entity_filename


def _run_id(run_id: Annotated[str, Path(description="Run id (UUIDv7, lowercase)")]) -> str:
    return parse_run_id(run_id)


def _entity_filename(
    filename: Annotated[str, Path(description="Entity filename, e.g. 03_output_image.png")],
) -> str:
    return parse_entity_filename(filename)


def _export_id(export_id: Annotated[str, Path(description="Export id (UUIDv7)")]) -> str:
    return parse_export_id(export_id)


RunIdPath = Annotated[str, Depends(_run_id)]
EntityFilenamePath = Annotated[str, Depends(_entity_filename)]
ExportIdPath = Annotated[str, Depends(_export_id)]

_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
SessionIdPath = Annotated[
    str, Path(pattern=_UUID, max_length=36, description="The session's id (a UUID).")
]
