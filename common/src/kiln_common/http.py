"""HTTP plumbing shared by every service: request ids, run-id log context, health routes."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from kiln_contracts.subjects import HEADER_REQUEST_ID

from kiln_common.logging import current_request_id, current_run_id

logger = logging.getLogger("kiln.http")

_RUN_IN_PATH = re.compile(
    r"/runs/([0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})"
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def install_request_context(app: FastAPI) -> None:
    """Accept or mint ``X-Request-ID``, echo it, and tag log lines with it and any run id."""

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        incoming = request.headers.get(HEADER_REQUEST_ID, "")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        match = _RUN_IN_PATH.search(request.url.path)
        req_token = current_request_id.set(request_id)
        run_token = current_run_id.set(match.group(1) if match else None)
        started = time.perf_counter()
        try:
            response = await call_next(request)
            response.headers[HEADER_REQUEST_ID] = request_id
            if request.url.path not in ("/healthz", "/readyz"):
                logger.info(
                    "%s %s %s",
                    request.method,
                    request.url.path,
                    response.status_code,
                    extra={
                        "status": response.status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            return response
        finally:
            current_run_id.reset(run_token)
            current_request_id.reset(req_token)


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
