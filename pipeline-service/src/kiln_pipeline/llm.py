"""Client for an OpenAI-compatible chat endpoint (``POST /v1/chat/completions``), used by the
text stages. Adapter: knows the protocol, not runs."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from kiln_pipeline.ports import TextStageError


@dataclass(frozen=True)
class ChatClient:
    url: str
    http: httpx.AsyncClient
    timeout_seconds: float = 60.0

    async def complete(self, model: str, system_prompt: str, text: str) -> str:
        body = {
            "model": model,
            "messages": [
                {"role": "system", "content": system_prompt},
                {"role": "user", "content": text},
            ],
        }
        try:
            response = await self.http.post(
                f"{self.url}/v1/chat/completions", json=body, timeout=self.timeout_seconds
            )
        except httpx.HTTPError as exc:
            raise TextStageError(f"chat endpoint unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise TextStageError(
                f"chat endpoint answered {response.status_code}: {response.text[:200]}"
            )
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise TextStageError(f"chat endpoint answered without a message: {exc!r}") from exc
        if not isinstance(content, str) or not content.strip():
            raise TextStageError("chat endpoint answered with an empty message")
        return content
