"""Prometheus metrics shared by every service: ``install_metrics(app, service)`` adds HTTP
latencies by route template and a ``/metrics`` endpoint; the run metrics below are declared once
here so every service that observes a run (or the gateway, from the event stream) feeds the same
names."""

from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_LATENCY = Histogram(
    "kiln_http_request_duration_seconds",
    "Time from request to the end of the response body, by route template.",
    ["service", "method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RUNS_BY_STATE = Counter(
    "kiln_runs_total", "Runs that reached each state (queued, running, … completed).", ["state"]
)
STAGE_LATENCY = Histogram(
    "kiln_run_stage_seconds",
    "Time from minting the run id to each event of the run (started, generated, stored, "
    "failed, cancelled): replica-independent, since every event carries its time.",
    ["event"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
QUEUE_DEPTH = Gauge(
    "kiln_queue_depth", "Requested runs not yet finished by the pipeline (pending + in flight)."
)
STORAGE_ERRORS = Counter(
    "kiln_storage_errors_total", "Runs that failed while their outputs were being stored."
)
RUN_FAILURES = Counter(
    "kiln_run_failures_total", "Failed runs by stage and code.", ["stage", "code"]
)

_UNMATCHED = "unmatched"
_SKIP = frozenset({"/metrics", "/healthz", "/readyz"})


def _route_template(app: ASGIApp, scope: Scope) -> str:
    """The route's path template (``/api/runs/{run_id}``), never the raw path: raw paths would
    give every run its own time series."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", _UNMATCHED))
    for candidate in getattr(app, "routes", ()):
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return str(getattr(candidate, "path", _UNMATCHED))
    return _UNMATCHED


class HttpMetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): it times streamed bodies to their last byte."""

    def __init__(self, app: ASGIApp, service: str, router_app: FastAPI) -> None:
        self.app = app
        self.service = service
        self.router_app = router_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _SKIP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_observe)
        finally:
            HTTP_LATENCY.labels(
                self.service,
                scope["method"],
                _route_template(self.router_app, scope),
                str(status),
            ).observe(time.perf_counter() - started)


def install_metrics(app: FastAPI, service: str) -> None:
    """HTTP latencies for every route and ``GET /metrics`` in the Prometheus text format."""
    app.add_middleware(HttpMetricsMiddleware, service=service, router_app=app)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
