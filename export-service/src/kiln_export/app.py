"""export-service: reads the storage root (read-only) to build research archives.

Archive building arrives with its own issue; this service already proves it reads the same
storage root as media-service by reporting that root's id at /system.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

import anyio
from fastapi import FastAPI
from kiln_common.errors import install_error_handlers
from kiln_common.http import install_health_routes, install_request_context
from kiln_common.logging import configure_logging
from kiln_common.metrics import install_metrics
from kiln_common.nats import connect, ensure_streams
from kiln_contracts.api import ServiceInfo
from kiln_contracts.layout import STORAGE_ID_FILE

from kiln_export.config import ExportSettings


def _read_storage_id(settings: ExportSettings) -> str | None:
    path = settings.storage_root / STORAGE_ID_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def create_app(settings: ExportSettings | None = None) -> FastAPI:
    settings = settings or ExportSettings()  # from the environment
    configure_logging("export-service", settings.instance_id, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nc = await connect(settings.nats_url, f"export-service {settings.instance_id}")
        await ensure_streams(nc.jetstream(), settings.nats_stream_replicas)
        app.state.nc = nc
        try:
            yield
        finally:
            await nc.drain()

    app = FastAPI(title="kiln export-service", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    install_request_context(app)
    install_metrics(app, "export-service")

    async def readiness() -> dict[str, str]:
        # media-service writes the id; until it has, this root is not (yet) the shared one.
        storage_id = await anyio.to_thread.run_sync(_read_storage_id, settings)
        return {
            "nats": "ok" if app.state.nc.is_connected else "disconnected",
            "storage": "ok" if storage_id else f"no {STORAGE_ID_FILE} in {settings.storage_root}",
        }

    install_health_routes(app, readiness)

    @app.get("/system", response_model=ServiceInfo)
    async def system() -> ServiceInfo:
        return ServiceInfo(
            service="export-service",
            instance_id=settings.instance_id,
            version=version("kiln-export"),
            storage_id=await anyio.to_thread.run_sync(_read_storage_id, settings),
            storage_root=str(settings.storage_root),
        )

    return app
