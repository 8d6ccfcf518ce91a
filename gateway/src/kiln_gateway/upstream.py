"""Calls from the gateway to the internal services, with failures mapped to honest statuses:
unreachable → 503, timed out → 504, a 5xx upstream → 502; an upstream 4xx JSON error passes
through unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
from kiln_common.logging import current_request_id
from kiln_contracts.api import CreateRunBody
from kiln_contracts.errors import ErrorCode
from kiln_contracts.records import RunError, RunRecord, RunRequest
from kiln_contracts.subjects import HEADER_REQUEST_ID

from kiln_gateway.errors import GatewayError


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = dict(extra or {})
    request_id = current_request_id.get()
    if request_id:
        headers[HEADER_REQUEST_ID] = request_id
    return headers


def _raise_for(service: str, response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    if response.status_code >= 500:
        raise GatewayError(
            ErrorCode.UPSTREAM_ERROR, f"{service} answered {response.status_code}", 502
        )
    try:
        body = response.json()
        code, detail = str(body["error"]), str(body["detail"])
    except (ValueError, KeyError, TypeError):
        code, detail = ErrorCode.UPSTREAM_ERROR.value, f"{service} answered {response.status_code}"
    raise GatewayError(code, detail, response.status_code)


class Upstream:
    def __init__(self, name: str, base_url: str, http: httpx.AsyncClient) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.http = http

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        """Map what httpx raises to what the client is told: timed out 504, unreachable 503."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise GatewayError(
                ErrorCode.UPSTREAM_TIMEOUT, f"{self.name} did not answer in time", 504
            ) from exc
        except httpx.HTTPError as exc:
            raise GatewayError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"{self.name} is unavailable: {type(exc).__name__}",
                503,
            ) from exc

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._transport_errors():
            response = await self.http.request(
                method,
                f"{self.base_url}{path}",
                headers=_headers(kwargs.pop("headers", None)),
                **kwargs,
            )
        _raise_for(self.name, response)
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
                    _raise_for(self.name, response)
                yield response


class MediaRunRecords:
    """The run records, kept by media-service, over its internal HTTP API."""

    def __init__(self, media: Upstream) -> None:
        self.media = media

    async def create(self, run_id: str, request: RunRequest) -> RunRecord:
        body = CreateRunBody(run_id=run_id, request=request)
        response = await self.media.request("POST", "/runs", json=body.model_dump(mode="json"))
        return RunRecord.model_validate(response.json())

    async def get(self, run_id: str) -> RunRecord:
        return RunRecord.model_validate(await self.media.get_json(f"/runs/{run_id}"))

    async def fail(self, run_id: str, failure: RunError) -> None:
        await self.media.request(
            "POST", f"/runs/{run_id}/fail", json=failure.model_dump(mode="json")
        )
