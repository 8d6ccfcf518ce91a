"""media-service: the only writer of the storage root."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import anyio
import httpx
from fastapi import FastAPI
from kiln_common.errors import install_error_handlers
from kiln_common.http import install_health_routes, install_request_context
from kiln_common.logging import configure_logging
from kiln_common.metrics import install_metrics
from kiln_common.nats import JetStreamPublisher, connect, ensure_streams
from kiln_storage.base import RunStorage, StorageError
from kiln_storage.index import RunIndex
from kiln_storage.local import RunStore
from kiln_storage.s3 import S3RunStore

from kiln_media.api import router
from kiln_media.catalog import RunCatalog
from kiln_media.comfy_source import ComfyViewSource
from kiln_media.config import MediaSettings
from kiln_media.messaging import build_consumer
from kiln_media.service import MediaService
from kiln_media.state import MediaState

logger = logging.getLogger("kiln.media")

RECENT_DAYS = 2  # runs are written while they run: this is where other replicas' changes are


async def _every(
    seconds: float, job: Callable[[], Awaitable[object]], *, wait_first: bool = False
) -> None:
    """Run a periodic job forever; a failure is logged and the next round tries again."""
    if wait_first:
        await anyio.sleep(seconds)
    while True:
        try:
            await job()
        except Exception:
            logger.exception("periodic job failed; retrying in %.0f s", seconds)
        await anyio.sleep(seconds)


def open_storage(settings: MediaSettings) -> RunStorage:
    if settings.storage_url is not None:
        return S3RunStore.from_url(settings.storage_url, spool=settings.media_spool_dir)
    assert settings.storage_root is not None  # the settings refuse neither being set
    return RunStore(settings.storage_root)


def create_app(settings: MediaSettings | None = None) -> FastAPI:
    settings = settings or MediaSettings()  # read from the environment
    configure_logging("media-service", settings.instance_id, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_storage(settings)
        storage_id = await anyio.to_thread.run_sync(store.ensure_storage_id)
        index = RunIndex(store, settings.media_index_path)
        catalog = RunCatalog(store, index, settings.instance_id)
        report = await catalog.sync_index()
        logger.info(
            "listing index ready: %d runs, %d read, %d dropped in %.2f s",
            report.scanned,
            report.refreshed,
            report.removed,
            report.seconds,
        )
        nc = await connect(settings, f"media-service {settings.instance_id}")
        js = nc.jetstream()
        await ensure_streams(js, settings.nats_stream_replicas)
        timeout = httpx.Timeout(settings.media_fetch_timeout_seconds, connect=5)
        async with httpx.AsyncClient(timeout=timeout) as http:
            service = MediaService(
                store,
                ComfyViewSource(http),
                JetStreamPublisher(js),
                fetch_attempts=settings.media_fetch_attempts,
            )
            app.state.media = MediaState(settings, service, storage_id, nc, catalog, store)
            consumer = build_consumer(js, service, settings.media_consumer_concurrency)
            await consumer.start()
            try:
                async with anyio.create_task_group() as jobs:
                    jobs.start_soon(
                        _every,
                        settings.media_index_sync_seconds,
                        lambda: catalog.sync_index(recent_days=RECENT_DAYS),
                    )
                    jobs.start_soon(
                        partial(
                            _every,
                            settings.media_index_full_sync_seconds,
                            catalog.sync_index,
                            wait_first=True,  # the start-up sync was a full one
                        )
                    )
                    if settings.retention_days is not None:
                        days = settings.retention_days
                        jobs.start_soon(
                            _every,
                            settings.retention_interval_seconds,
                            lambda: catalog.apply_retention(days),
                        )
                    try:
                        yield
                    finally:
                        jobs.cancel_scope.cancel()
            finally:
                await consumer.stop()
                await nc.drain()
                index.close()

    app = FastAPI(title="kiln media-service", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    install_request_context(app)
    install_metrics(app, "media-service")

    async def readiness() -> dict[str, str]:
        state: MediaState = app.state.media
        try:
            same_root = await anyio.to_thread.run_sync(state.store.read_storage_id) == (
                state.storage_id
            )
        except (OSError, StorageError, ValueError) as exc:
            logger.error("storage root unreadable: %s", exc)
            same_root = False
        return {
            "nats": "ok" if state.nc.is_connected else "disconnected",
            "storage": "ok" if same_root else "storage-id missing or changed",
        }

    install_health_routes(app, readiness)
    app.include_router(router)
    return app
