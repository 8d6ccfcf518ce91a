"""Streams generated outputs from a ComfyUI backend's ``/view`` (adapter for OutputSource)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from kiln_contracts.events import GeneratedOutput

from kiln_media.ports import OutputFetchError

CHUNK_SIZE = 256 * 1024


class ComfyViewSource:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def stream(self, backend_url: str, output: GeneratedOutput) -> AsyncIterator[bytes]:
        params = {"filename": output.filename, "subfolder": output.subfolder, "type": output.type}
        try:
            async with self.client.stream("GET", f"{backend_url}/view", params=params) as response:
                if response.status_code == 404:
                    raise OutputFetchError(
                        f"backend has no file {output.subfolder}/{output.filename}", retryable=True
                    )
                if response.status_code >= 400:
                    raise OutputFetchError(
                        f"backend answered {response.status_code} for {output.filename}",
                        retryable=response.status_code >= 500,
                    )
                async for chunk in response.aiter_bytes(CHUNK_SIZE):
                    yield chunk
        except httpx.HTTPError as exc:
            raise OutputFetchError(
                f"fetching {output.filename} failed: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
