"""Every error answered by one set of handlers as ``{"error", "detail"}``.

A ``MappedError`` (kiln_contracts.errors) carries its code and status: domain and storage
errors on their class, each service's own error type (a ServiceError subclass) per instance.
``install_error_handlers`` answers those, and makes every other failure (validation, unknown
route, bug) answer in the same JSON shape, never HTML or a traceback: a bug is a logged 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kiln_contracts.errors import ErrorCode, MappedError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ServiceError(MappedError):
    """A service's own error, code and status given where it is raised."""

    def __init__(
        self,
        code: ErrorCode | str,
        detail: str,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = str(code)
        self.headers = headers
        if status_code is not None:
            self.status_code = status_code


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _describe_validation(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


_HTTP_CODES = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}


def install_error_handlers(app: FastAPI) -> None:
    async def on_mapped_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MappedError)
        if exc.status_code >= 500:
            logger.error("request failed: %s", exc.detail, extra={"error_code": exc.code})
        return error_response(exc.status_code, str(exc.code), exc.detail, exc.headers)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        # Unparseable JSON is a malformed request, not a payload that failed validation.
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, ErrorCode.INVALID_REQUEST, "body is not valid JSON")
        return error_response(422, ErrorCode.INVALID_REQUEST, _describe_validation(errors))

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, ErrorCode.INVALID_REQUEST)
        return error_response(
            exc.status_code, code, str(exc.detail), dict(exc.headers) if exc.headers else None
        )

    async def on_unencodable(_: Request, exc: Exception) -> JSONResponse:
        # Text that cannot be UTF-8 (a lone surrogate from JSON) that slipped past validation.
        logger.warning("refused unencodable text: %s", exc)
        return error_response(422, ErrorCode.INVALID_REQUEST, "text must be valid Unicode")

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error: %s", type(exc).__name__)
        return error_response(500, ErrorCode.INTERNAL, "internal error; it has been logged")

    app.add_exception_handler(MappedError, on_mapped_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(UnicodeEncodeError, on_unencodable)
    app.add_exception_handler(Exception, on_unexpected)
