"""Error codes shared by every service, the JSON error body they all answer with, and the one
base of every error that knows its HTTP answer."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ErrorCode(StrEnum):
    # Request problems (4xx)
    INVALID_REQUEST = "invalid_request"
    INVALID_RUN_ID = "invalid_run_id"
    INVALID_FILENAME = "invalid_filename"
    UNKNOWN_WORKFLOW = "unknown_workflow"
    INVALID_PARAMS = "invalid_params"
    WORKFLOW_UNAVAILABLE = "workflow_unavailable"
    RUN_NOT_FOUND = "run_not_found"
    FILE_NOT_FOUND = "file_not_found"
    RUN_EXISTS = "run_exists"
    RUN_FINISHED = "run_finished"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    INVALID_CURSOR = "invalid_cursor"
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    BLOCKED = "blocked"  # 451: blocked media is kept for research but never served
    # Run failures (recorded on the run)
    INVALID_WORKFLOW = "invalid_workflow"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    BACKEND_ERROR = "backend_error"
    BACKEND_LOST = "backend_lost"
    NO_OUTPUTS = "no_outputs"
    TIMEOUT = "timeout"
    STORAGE_FAILED = "storage_failed"
    QUEUE_UNAVAILABLE = "queue_unavailable"
    CANCELLED = "cancelled"
    TEXT_STAGE_FAILED = "text_stage_failed"
    PROMPT_BLOCKED = "prompt_blocked"  # 422: a safety check refused the prompt
    TEXT_STAGE_BLOCKED = "text_stage_blocked"  # a text stage's output was refused
    SAFETY_UNAVAILABLE = "safety_unavailable"  # 503: a safety check gave no answer (fails closed)
    # Infrastructure (5xx)
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UPSTREAM_ERROR = "upstream_error"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    INTERNAL = "internal"


class ErrorBody(BaseModel):
    """Every error any kiln service returns over HTTP has this shape."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "run_not_found", "detail": "no run 0190…"}]}
    )

    error: str = Field(description="Stable machine-readable code (see ErrorCode).")
    detail: str = Field(description="What went wrong, in words a person can act on.")


class MappedError(Exception):
    """An error that knows how it is answered over HTTP: ``status_code`` with
    ``{"error": code, "detail": detail}``.

    A domain or storage error with one meaning sets ``code`` and ``status_code`` on its class
    (``RunNotFoundError`` is always a 404 ``run_not_found``); a service's own error type
    (``kiln_common.errors.ServiceError``) passes them per instance. One handler,
    ``kiln_common.errors.install_error_handlers``, answers them all: routes never translate.
    Plain Python, so contracts and storage can raise them without knowing FastAPI.
    """

    code: str = ErrorCode.INTERNAL
    status_code: int = 500
    headers: dict[str, str] | None = None  # e.g. Retry-After on a 429 or 503

    @property
    def detail(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__
