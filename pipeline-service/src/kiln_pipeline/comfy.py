"""HTTP client for one ComfyUI backend (docs/design.md §6). Adapter; knows the protocol, not runs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx


class BackendUnavailableError(Exception):
    """The backend did not answer or answered 5xx: the run may go elsewhere or wait."""


class PromptRejectedError(Exception):
    """ComfyUI refused the graph (400): the workflow itself is wrong for this backend.

    ``error`` is ComfyUI's error object as it sent it (``type``, ``message``, ``details``,
    ``extra_info``), ``node_errors`` its per-node errors as it sent them (by node id: ``errors``
    each with ``type``, ``message``, ``details``, ``extra_info``; ``dependent_outputs``;
    ``class_type``): nothing of what ComfyUI said is dropped.
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        node_errors: Any,
        error: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.node_errors = node_errors
        self.error = error or {}

    def summary(self) -> str:
        """One line naming what ComfyUI named: its message and details, then each node's
        errors with the node's id and class."""
        parts = [self.message]
        details = self.error.get("details")
        if (
            isinstance(details, str)
            and details.strip()
            and self.error_type
            != (
                "prompt_outputs_failed_validation"  # its details repeat the node errors below
            )
        ):
            parts[0] = f"{self.message} ({details.strip()})"
        if isinstance(self.node_errors, dict):
            for node_id, node in self.node_errors.items():
                if not isinstance(node, dict):
                    continue
                raw = node.get("errors")
                errors: list[Any] = raw if isinstance(raw, list) else []
                said = "; ".join(
                    ": ".join(
                        str(e[key])
                        for key in ("message", "details")
                        if isinstance(e, dict) and e.get(key)
                    )
                    for e in errors
                )
                parts.append(
                    f"node {node_id} ({node.get('class_type') or '?'}): {said or 'invalid'}"
                )
        return "; ".join(parts)


@dataclass(frozen=True)
class ComfyClient:
    name: str
    url: str
    http: httpx.AsyncClient

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, f"{self.url}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise BackendUnavailableError(
                f"{self.name}: {method} {path} answered {response.status_code}: {response.text[:200]}"
            )
        return response

    async def submit(self, graph: dict[str, Any], prompt_id: str, client_id: str) -> int:
        body = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
        response = await self._request("POST", "/prompt", json=body)
        if response.status_code == 400:
            try:
                payload = response.json()
            except ValueError:
                payload = {}
            if not isinstance(payload, dict):
                payload = {}
            error = payload.get("error") or {}
            if not isinstance(error, dict):
                error = {"type": "invalid_prompt", "message": str(error)}
            raise PromptRejectedError(
                str(error.get("type") or "invalid_prompt"),
                str(error.get("message") or "ComfyUI rejected the workflow"),
                payload.get("node_errors") or {},
                error,
            )
        if response.status_code != 200:
            raise BackendUnavailableError(f"{self.name}: /prompt answered {response.status_code}")
        return int(response.json().get("number", 0))

    async def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The finished entry, or None while queued, running or unknown (ComfyUI says ``{}``)."""
        response = await self._request("GET", f"/history/{prompt_id}")
        entry = response.json().get(prompt_id) if response.status_code == 200 else None
        return entry if isinstance(entry, dict) else None

    async def queued_prompt_ids(self) -> set[str]:
        running, pending = await self.queue()
        return running | pending

    async def queue(self) -> tuple[set[str], set[str]]:
        """The ids of the running and of the pending prompts."""
        response = await self._request("GET", "/queue")
        payload = response.json()
        found: list[set[str]] = []
        for key in ("queue_running", "queue_pending"):
            ids: set[str] = set()
            for item in payload.get(key, []):
                if isinstance(item, list) and len(item) > 1:
                    ids.add(str(item[1]))
            found.append(ids)
        return found[0], found[1]

    async def queue_remaining(self, within_seconds: float | None = None) -> int:
        extra: dict[str, Any] = {} if within_seconds is None else {"timeout": within_seconds}
        response = await self._request("GET", "/prompt", **extra)
        return int(response.json().get("exec_info", {}).get("queue_remaining", 0))

    async def node_info(
        self, classes: frozenset[str], within_seconds: float | None = None
    ) -> dict[str, Any]:
        """``/object_info/{class}`` for each class: what the backend has of them (a class it
        does not have is absent). One small request per class rather than the whole
        ``/object_info``, which on a ComfyUI with many custom nodes is megabytes."""
        extra: dict[str, Any] = {} if within_seconds is None else {"timeout": within_seconds}

        async def one(node_class: str) -> tuple[str, Any]:
            response = await self._request(
                "GET", f"/object_info/{quote(node_class, safe='')}", **extra
            )
            if response.status_code != 200:
                raise BackendUnavailableError(
                    f"{self.name}: /object_info/{node_class} answered {response.status_code}"
                )
            try:
                body = response.json()
            except ValueError as exc:
                raise BackendUnavailableError(
                    f"{self.name}: /object_info/{node_class} is not JSON"
                ) from exc
            return node_class, body.get(node_class) if isinstance(body, dict) else None

        found = await asyncio.gather(*(one(c) for c in sorted(classes)))
        return {node_class: info for node_class, info in found if isinstance(info, dict)}

    async def interrupt(self, prompt_id: str) -> None:
        await self._request("POST", "/interrupt", json={"prompt_id": prompt_id})

    async def delete_queued(self, prompt_id: str) -> None:
        await self._request("POST", "/queue", json={"delete": [prompt_id]})

    def ws_url(self, client_id: str) -> str:
        base = self.url.replace("https://", "wss://").replace("http://", "ws://")
        return f"{base}/ws?clientId={client_id}"
