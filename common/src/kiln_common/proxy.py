"""Calling another kiln service over HTTP and passing its answers on.

One place maps what can go wrong to honest statuses: timed out → 504 ``upstream_timeout``,
unreachable → 503 ``upstream_unavailable``, a 5xx (or an answer that cannot be read) → 502
``upstream_error``; an upstream 4xx in our error shape (``ErrorBody``) passes through unchanged,
any other 4xx keeps its status with ``upstream_error``. Streamed bodies (media, archives, SSE)
travel through with their validators, ranges and redirects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
from fastapi import Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from kiln_contracts.errors import ErrorBody, ErrorCode
from kiln_contracts.subjects import HEADER_REQUEST_ID
from pydantic import ValidationError

from kiln_common.errors import ServiceError
from kiln_common.logging import current_request_id

# Headers that make streamed bodies seekable, cacheable and downloadable; passed both ways.
FORWARD_REQUEST_HEADERS = ("range", "if-none-match", "if-range", "if-modified-since")
FORWARD_RESPONSE_HEADERS = (
    "content-type",
    "content-length",
    "content-range",
    "content-disposition",
    "accept-ranges",
    "etag",
    "last-modified",
    "cache-control",
    "x-kiln-export-id",
    "x-kiln-runs",
)


class UpstreamError(ServiceError):
    """What the caller is told when another service failed or refused."""


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = dict(extra or {})
    request_id = current_request_id.get()
    if request_id:
        headers[HEADER_REQUEST_ID] = request_id
    return headers


def raise_for_status(service: str, response: httpx.Response) -> None:
    """Raise the UpstreamError an error answer stands for; nothing for a success."""
    if response.status_code < 400:
        return
    if response.status_code >= 500:
        # Never pass an upstream's 5xx body on: it may hold internals.
        raise UpstreamError(
            ErrorCode.UPSTREAM_ERROR, f"{service} answered {response.status_code}", 502
        )
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValidationError:
        raise UpstreamError(
            ErrorCode.UPSTREAM_ERROR,
            f"{service} answered {response.status_code}",
            response.status_code,
        ) from None
    raise UpstreamError(body.error, body.detail, response.status_code)


class Upstream:
    """One internal service, called with the request id passed on."""

    def __init__(self, name: str, base_url: str, http: httpx.AsyncClient) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.http = http

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.TimeoutException as exc:
            raise UpstreamError(
                ErrorCode.UPSTREAM_TIMEOUT, f"{self.name} did not answer in time", 504
            ) from exc
        except httpx.TransportError as exc:
            raise UpstreamError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"{self.name} is unavailable: {type(exc).__name__}",
                503,
            ) from exc
        except httpx.HTTPError as exc:  # an answer that could not be read (decoding, redirects)
            raise UpstreamError(
                ErrorCode.UPSTREAM_ERROR, f"{self.name} answered badly: {type(exc).__name__}", 502
            ) from exc

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._transport_errors():
            response = await self.http.request(
                method,
                f"{self.base_url}{path}",
                headers=_headers(kwargs.pop("headers", None)),
                **kwargs,
            )
        raise_for_status(self.name, response)
        return response

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        return (await self.request("GET", path, **kwargs)).json()

    @asynccontextmanager
    async def stream(self, path: str, headers: dict[str, str]) -> AsyncIterator[httpx.Response]:
        """Open a streamed GET; 4xx/5xx are raised before any byte is passed on."""
        with self._transport_errors():
            async with self.http.stream(
                "GET", f"{self.base_url}{path}", headers=_headers(headers)
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise_for_status(self.name, response)
                yield response


def relay(upstream: httpx.Response) -> Response:
    """An upstream JSON answer passed on as it is (status and body)."""
    if upstream.status_code == 204:
        return Response(status_code=204)
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type", "application/json"),
    )


async def pass_through(upstream: Upstream, path: str, request: Request) -> Response:
    """A streamed GET through to ``upstream`` with Range, validators, 304 and redirects (an S3
    presigned URL) preserved; the upstream connection closes when the body is done."""
    forward = {h: request.headers[h] for h in FORWARD_REQUEST_HEADERS if h in request.headers}
    opened = upstream.stream(path, forward)
    response = await opened.__aenter__()
    headers = {h: response.headers[h] for h in FORWARD_RESPONSE_HEADERS if h in response.headers}
    if response.status_code == 304:
        await opened.__aexit__(None, None, None)
        return Response(status_code=304, headers=headers)
    if response.is_redirect and "location" in response.headers:
        await opened.__aexit__(None, None, None)
        return RedirectResponse(response.headers["location"], status_code=response.status_code)

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        finally:
            await opened.__aexit__(None, None, None)

    return StreamingResponse(body(), status_code=response.status_code, headers=headers)
