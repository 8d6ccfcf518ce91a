"""Run ids: UUIDv7 in lowercase canonical text, minted only by the gateway.

The same string is the ComfyUI ``prompt_id``, the NATS subject token, the run folder's name
and the ``run_id`` of every log line, so it is validated strictly wherever it enters.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from typing import Annotated

import uuid_utils
from pydantic import AfterValidator

from kiln_contracts.errors import ErrorCode, MappedError

_CANONICAL = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class InvalidRunIdError(MappedError, ValueError):
    """Raised when a string is not a lowercase canonical UUIDv7."""

    code = ErrorCode.INVALID_RUN_ID
    status_code = 400


def new_run_id() -> str:
    """Mint a run id. Only the gateway calls this.

    uuid-utils keeps ids monotonic with a counter, not by pushing the timestamp ahead, so the
    id's instant (and so its storage folder's day) stays the real one even under bursts.
    """
    return str(uuid_utils.uuid7())


def parse_run_id(value: str) -> str:
    """Return ``value`` if it is a lowercase canonical UUIDv7, else raise InvalidRunIdError.

    No normalisation: an upper-case or braced form is refused rather than rewritten, so one
    run can never be reached under two spellings.
    """
    if not isinstance(value, str) or not _CANONICAL.fullmatch(value):
        raise InvalidRunIdError(f"not a lowercase canonical UUIDv7: {value!r}"[:200])
    return value


def is_run_id(value: str) -> bool:
    return isinstance(value, str) and _CANONICAL.fullmatch(value) is not None


def run_created_at(run_id: str) -> datetime:
    """The UTC instant encoded in the id's first 48 bits (milliseconds since the epoch)."""
    millis = uuid.UUID(parse_run_id(run_id)).int >> 80
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def run_date(run_id: str) -> date:
    """The UTC day a run belongs to; names its storage folder without a lookup table."""
    return run_created_at(run_id).date()


RunId = Annotated[str, AfterValidator(parse_run_id)]
