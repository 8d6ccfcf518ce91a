"""Error codes shared by every service and the JSON error body they all answer with."""

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
