"""Simulator of an OpenAI-compatible chat endpoint (``POST /v1/chat/completions``) for tests.

Deterministic: the answer is ``[<model>] <SYSTEM PROMPT'S FIRST WORD> <user text upper-cased>``
so a test can predict every stage's output. ``POST /sim/faults`` makes the next N requests
answer 500 (or hang for a while), ``GET /sim/requests`` lists what was asked.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)


class Faults(BaseModel):
    error_500: int = Field(default=0, ge=0, description="Answer this many next requests with 500.")
    hang_seconds: float = Field(default=0, ge=0, description="Delay every answer this long.")


@dataclass
class SimState:
    faults: Faults = field(default_factory=Faults)
    requests: list[dict[str, Any]] = field(default_factory=list)


def answer(model: str, messages: list[ChatMessage]) -> str:
    system = next((m.content for m in messages if m.role == "system"), "")
    user = next((m.content for m in reversed(messages) if m.role == "user"), "")
    tag = system.split()[0].lower() if system.split() else "echo"
    return f"[{model}] {tag}: {user.upper()}"


def create_app() -> FastAPI:
    app = FastAPI(title="llm-sim")
    state = SimState()

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest) -> dict[str, Any] | JSONResponse:
        state.requests.append(body.model_dump())
        if state.faults.hang_seconds:
            await asyncio.sleep(state.faults.hang_seconds)
        if state.faults.error_500:
            state.faults.error_500 -= 1
            return JSONResponse(
                {"error": {"message": "simulated failure", "type": "server_error"}}, 500
            )
        content = answer(body.model, body.messages)
        return {
            "id": f"chatcmpl-{len(state.requests)}",
            "object": "chat.completion",
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }

    @app.post("/sim/faults")
    async def set_faults(faults: Faults) -> Faults:
        state.faults = faults
        return faults

    @app.get("/sim/requests")
    async def list_requests() -> list[dict[str, Any]]:
        return state.requests

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        """What Ollama and llama.cpp's server answer too; ``make dev`` asks it to see that a
        chat endpoint is there. Any model name is accepted, so none is listed by name."""
        return {"object": "list", "data": [{"id": "any", "object": "model", "owned_by": "llm-sim"}]}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
