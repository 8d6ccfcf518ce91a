"""media-service: the only writer of the storage root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
from fastapi import FastAPI
from kiln_common.errors import install_error_handlers
from kiln_common.http import install_health_routes, install_request_context
from kiln_common.logging import configure_logging
from kiln_common.metrics import install_metrics
from kiln_common.nats import connect, ensure_streams
from kiln_storage.local import RunStore

from kiln_media.api import router
from kiln_media.comfy_source import ComfyViewSource
from kiln_media.config import MediaSettings
from kiln_media.messaging import JetStreamPublisher, build_consumer
from kiln_media.service import MediaService
from kiln_media.state import MediaState


def create_app(settings: MediaSettings | None = None) -> FastAPI:
    settings = settings or MediaSettings()  # read from the environment
    configure_logging("media-service", settings.instance_id, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = RunStore(settings.storage_root)
        storage_id = await anyio.to_thread.run_sync(store.ensure_storage_id)
        nc = await connect(settings.nats_url, f"media-service {settings.instance_id}")
        js = nc.jetstream()
        await ensure_streams(js)
        timeout = httpx.Timeout(settings.media_fetch_timeout_seconds, connect=5)
        async with httpx.AsyncClient(timeout=timeout) as http:
            service = MediaService(
                store,
                ComfyViewSource(http),
                JetStreamPublisher(js),
                fetch_attempts=settings.media_fetch_attempts,
            )
            app.state.media = MediaState(settings, service, storage_id, nc)
            consumer = build_consumer(js, service, settings.media_consumer_concurrency)
            await consumer.start()
            try:
                yield
            finally:
                await consumer.stop()
                await nc.drain()

    app = FastAPI(title="kiln media-service", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    install_request_context(app)
    install_metrics(app, "media-service")

    async def readiness() -> dict[str, str]:
        state: MediaState = app.state.media
        root_ok = (settings.storage_root / "storage-id").is_file()
        return {
            "nats": "ok" if state.nc.is_connected else "disconnected",
            "storage": "ok" if root_ok else "storage-id missing",
        }

    install_health_routes(app, readiness)
    app.include_router(router)
    return app
