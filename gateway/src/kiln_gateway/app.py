"""The gateway: kiln's only public door."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from kiln_common.errors import install_error_handlers
from kiln_common.http import install_health_routes, install_request_context
from kiln_common.logging import configure_logging
from kiln_common.metrics import install_metrics
from kiln_common.nats import connect, ensure_streams, run_claims
from kiln_common.proxy import Upstream, UpstreamError
from kiln_common.settings import Environment
from kiln_safety.screen import build_screen
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kiln_gateway.api import router
from kiln_gateway.auth import resolve_cookie_secret, resolve_researcher_token
from kiln_gateway.board import router as board_router
from kiln_gateway.catalog import WorkflowCatalog
from kiln_gateway.config import GatewaySettings
from kiln_gateway.exports_api import router as exports_router
from kiln_gateway.idempotency import IdempotencyStore
from kiln_gateway.identity import DEVICE_COOKIE, DeviceCookies, Identity
from kiln_gateway.limits import BodySizeLimit, DeviceRateLimiter, QueueDepthGuard
from kiln_gateway.messaging import NatsRunQueue
from kiln_gateway.observability import observe_run_events
from kiln_gateway.runs import RunCreator
from kiln_gateway.sessions import SessionStore
from kiln_gateway.state import GatewayState
from kiln_gateway.upstream import MediaRunRecords
from kiln_gateway.web import install_web


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()  # from the environment
    configure_logging("gateway", settings.instance_id, settings.log_level)
    researcher_token = resolve_researcher_token(settings)  # fails fast on a bad production secret
    cookies = DeviceCookies(
        resolve_cookie_secret(settings), settings.gateway_device_rotation_hours * 3600
    )

    # A bad safety policy (or a check it names that cannot be built) stops the start here.
    screen = build_screen(settings.safety_policy_dir, settings.safety_check_timeout_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each part is registered for clean-up as soon as it exists, so a start that fails
        # half-way closes what it had opened (in reverse order), as a normal stop does.
        async with AsyncExitStack() as stack:
            nc = await connect(settings, f"gateway {settings.instance_id}")
            stack.push_async_callback(nc.drain)
            js = nc.jetstream()
            await ensure_streams(js, settings.nats_stream_replicas)
            timeout = httpx.Timeout(settings.gateway_upstream_timeout_seconds, connect=3)
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
            http = await stack.enter_async_context(
                httpx.AsyncClient(timeout=timeout, limits=limits)
            )
            media = Upstream("media-service", settings.media_url, http)
            pipeline = Upstream("pipeline-service", settings.pipeline_url, http)
            export = Upstream("export-service", settings.export_url, http)
            catalog = WorkflowCatalog(pipeline, settings.gateway_catalog_ttl_seconds)
            creator = RunCreator(
                catalog,
                MediaRunRecords(media),
                NatsRunQueue(js, await run_claims(js, settings.nats_stream_replicas)),
                settings.gateway_max_input_chars,
                await IdempotencyStore.open(js, settings.gateway_idempotency_hours),
                await DeviceRateLimiter.open(js, settings.gateway_runs_per_device_per_minute),
                QueueDepthGuard(
                    js, settings.gateway_queue_consumer, settings.gateway_max_queue_depth
                ),
                screen,
            )
            sessions = await SessionStore.open(js, settings.gateway_session_hours)
            app.state.gateway = GatewayState(
                settings,
                nc,
                js,
                media,
                pipeline,
                export,
                catalog,
                creator,
                sessions,
                researcher_token,
            )
            metrics_subscription = await observe_run_events(nc)
            stack.push_async_callback(metrics_subscription.unsubscribe)
            yield

    app = FastAPI(
        title="kiln",
        version="0.1.0",
        description="Runs ComfyUI workflows for workshops and keeps every run as one record.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_request_context(app)
    if settings.gateway_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.gateway_cors_origins,
            allow_credentials=True,  # the device cookie
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Content-Type", "Authorization", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "ETag", "Content-Range"],
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.gateway_max_body_bytes)
    app.add_middleware(IdentityMiddleware, cookies=cookies, settings=settings)
    install_metrics(app, "gateway")

    async def readiness() -> dict[str, str]:
        state: GatewayState = app.state.gateway
        checks = {"nats": "ok" if state.nc.is_connected else "disconnected"}
        for upstream in (state.media, state.pipeline, state.export):
            try:
                await upstream.request("GET", "/healthz")
                checks[upstream.name] = "ok"
            except UpstreamError as exc:
                checks[upstream.name] = exc.detail
        return checks

    install_health_routes(app, readiness)
    app.include_router(router)
    app.include_router(board_router)  # the teacher's board: /api/sessions/{id}/…
    app.include_router(exports_router)
    install_web(app)  # the workshop UI at / and its files under /ui
    return app


class IdentityMiddleware:
    """Every /api request carries a device identity (``request.state.identity``); a new or
    changed one is sent back as the device cookie (HttpOnly: scripts in the page never see it).

    Pure ASGI rather than ``@app.middleware``: no extra task and stream per request, and the
    cookie is added to the response head whether the body is a model or a stream.
    """

    def __init__(self, app: ASGIApp, cookies: DeviceCookies, settings: GatewaySettings) -> None:
        self.app = app
        self.cookies = cookies
        self.max_age = int(settings.gateway_device_rotation_hours * 3600 * 2)
        # Production is served over TLS: never send the cookie in clear there.
        self.secure = settings.gateway_cookie_secure or settings.env == Environment.PRODUCTION

    def _set_cookie_header(self, identity: Identity) -> tuple[bytes, bytes]:
        carrier = Response()
        carrier.set_cookie(
            DEVICE_COOKIE,
            self.cookies.encode(identity),
            max_age=self.max_age,
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )
        return next(h for h in carrier.raw_headers if h[0] == b"set-cookie")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["identity"] = self.cookies.resolve(Request(scope).cookies.get(DEVICE_COOKIE))

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                current: Identity = state["identity"]
                if current.changed:
                    message["headers"] = [
                        *message.get("headers", []),
                        self._set_cookie_header(current),
                    ]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
