"""Server-Sent Events, the same on every service: frames, the heartbeat and the response."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

# A comment line: keeps proxies and browsers from timing out a quiet stream.
HEARTBEAT = b": heartbeat\n\n"


def sse_event(event: str, data: str, event_id: int | None = None) -> bytes:
    """One event frame; a multi-line ``data`` becomes several ``data:`` lines."""
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode()


def sse_retry(millis: int) -> bytes:
    """How long a browser waits before it reconnects."""
    return f"retry: {millis}\n\n".encode()


def sse_response(frames: AsyncIterator[bytes]) -> StreamingResponse:
    """The streamed answer: never cached, never buffered by a proxy."""
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
