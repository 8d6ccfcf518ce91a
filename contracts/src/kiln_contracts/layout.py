"""The storage root's layout (docs/design.md §5.6). Media-service writes it; export-service reads it."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from kiln_contracts.errors import ErrorCode, MappedError
from kiln_contracts.ids import parse_run_id, run_date

STORAGE_ID_FILE = "storage-id"
RUNS_DIR = "runs"
METADATA_FILE = "metadata.json"
LOCK_FILE = ".lock"

# ``{seq:02d}_{type}.{ext}``: lowercase ascii only, so no traversal, no look-alikes, no NUL.
_ENTITY_FILENAME = re.compile(r"^[0-9]{2,4}_[a-z0-9][a-z0-9_]{0,62}\.[a-z0-9]{1,8}$")
_ENTITY_TYPE = re.compile(r"^[a-z0-9][a-z0-9_]{0,62}$")


class InvalidFilenameError(MappedError, ValueError):
    """A filename from outside that could not be an entity of a run."""

    code = ErrorCode.INVALID_FILENAME
    status_code = 400


def run_relpath(run_id: str) -> PurePosixPath:
    """``runs/{YYYY-MM-DD}/{run_id}``, the date being the UTC day encoded in the id."""
    return PurePosixPath(RUNS_DIR, run_date(run_id).isoformat(), parse_run_id(run_id))


def entity_filename(seq: int, entity_type: str, ext: str) -> str:
    if not 1 <= seq <= 9999:
        raise ValueError(f"sequence number out of range: {seq}")
    name = f"{seq:02d}_{entity_type}.{ext}"
    return parse_entity_filename(name)


def parse_entity_filename(name: str) -> str:
    """Validate a filename that names an entity; raise InvalidFilenameError otherwise."""
    if not isinstance(name, str) or not _ENTITY_FILENAME.fullmatch(name):
        raise InvalidFilenameError(f"not an entity filename: {name!r}"[:200])
    return name


def is_entity_type(value: str) -> bool:
    return _ENTITY_TYPE.fullmatch(value) is not None
