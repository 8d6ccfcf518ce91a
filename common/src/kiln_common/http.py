"""HTTP plumbing shared by every service: request ids, run-id log context, health routes."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Response
from kiln_contracts.subjects import HEADER_REQUEST_ID
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiln_common.logging import current_request_id, current_run_id

logger = logging.getLogger("kiln.http")

_RUN_IN_PATH = re.compile(
    r"/runs/([0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})"
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    """Accept or mint ``X-Request-ID``, echo it, and tag log lines with it and any run id.

    Plain ASGI on purpose: Starlette's BaseHTTPMiddleware ends a streamed body cleanly even
    when the app fails half-way, which would turn a broken download into a silent 200.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(HEADER_REQUEST_ID, "")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        path: str = scope["path"]
        match = _RUN_IN_PATH.search(path)
        req_token = current_request_id.set(request_id)
        run_token = current_run_id.set(match.group(1) if match else None)
        started = time.perf_counter()
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(HEADER_REQUEST_ID, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            if path not in ("/healthz", "/readyz"):
                logger.info(
                    "%s %s %s",
                    scope["method"],
                    path,
                    status,
                    extra={
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            current_run_id.reset(run_token)
            current_request_id.reset(req_token)


def install_request_context(app: FastAPI) -> None:
    app.add_middleware(RequestContextMiddleware)


ReadinessCheck = Callable[[], Awaitable[dict[str, str]]]


def install_health_routes(app: FastAPI, readiness: ReadinessCheck) -> None:
    """``/healthz``: the process answers. ``/readyz``: its dependencies answer too (503 if not)."""

    @app.get("/healthz", tags=["health"], include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], include_in_schema=False)
    async def readyz(response: Response) -> dict[str, object]:
        checks = await readiness()
        ready = all(v == "ok" for v in checks.values())
        response.status_code = 200 if ready else 503
        return {"status": "ok" if ready else "unavailable", "checks": checks}
