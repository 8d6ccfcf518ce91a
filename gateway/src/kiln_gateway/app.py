"""The gateway: kiln's only public door."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from kiln_common.errors import install_error_handlers
from kiln_common.http import install_health_routes, install_request_context
from kiln_common.logging import configure_logging
from kiln_common.nats import connect, ensure_streams

from kiln_gateway.api import router
from kiln_gateway.auth import resolve_researcher_token
from kiln_gateway.catalog import WorkflowCatalog
from kiln_gateway.config import GatewaySettings
from kiln_gateway.errors import GatewayError
from kiln_gateway.exports_api import router as exports_router
from kiln_gateway.runs import RunCreator
from kiln_gateway.state import GatewayState
from kiln_gateway.upstream import Upstream


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()  # from the environment
    configure_logging("gateway", settings.instance_id, settings.log_level)
    researcher_token = resolve_researcher_token(settings)  # fails fast on a bad production secret

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nc = await connect(settings.nats_url, f"gateway {settings.instance_id}")
        js = nc.jetstream()
        await ensure_streams(js)
        timeout = httpx.Timeout(settings.gateway_upstream_timeout_seconds, connect=3)
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
            media = Upstream("media-service", settings.media_url, http)
            pipeline = Upstream("pipeline-service", settings.pipeline_url, http)
            export = Upstream("export-service", settings.export_url, http)
            catalog = WorkflowCatalog(pipeline, settings.gateway_catalog_ttl_seconds)
            creator = RunCreator(catalog, media, js, settings.gateway_max_input_chars)
            app.state.gateway = GatewayState(
                settings, nc, media, pipeline, export, catalog, creator, researcher_token
            )
            try:
                yield
            finally:
                await nc.drain()

    app = FastAPI(
        title="kiln",
        version="0.1.0",
        description="Runs ComfyUI workflows for workshops and keeps every run as one record.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_request_context(app)

    async def readiness() -> dict[str, str]:
        state: GatewayState = app.state.gateway
        checks = {"nats": "ok" if state.nc.is_connected else "disconnected"}
        for upstream in (state.media, state.pipeline, state.export):
            try:
                await upstream.request("GET", "/healthz")
                checks[upstream.name] = "ok"
            except GatewayError as exc:
                checks[upstream.name] = exc.detail
        return checks

    install_health_routes(app, readiness)
    app.include_router(router)
    app.include_router(exports_router)
    return app
