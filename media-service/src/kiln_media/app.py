"""media-service: the only writer of the storage root."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial

import anyio
import httpx
from fastapi import FastAPI
from kiln_common.errors import install_error_handlers
from kiln_common.http import install_health_routes, install_request_context
from kiln_common.logging import configure_logging
from kiln_common.metrics import install_metrics
from kiln_common.nats import JetStreamPublisher, connect, ensure_streams
from kiln_common.periodic import periodic_task
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
        # Each part is registered for clean-up as soon as it exists, so a start that fails
        # half-way closes what it had opened (in reverse order), as a normal stop does.
        async with AsyncExitStack() as stack:
            store = open_storage(settings)
            storage_id = await anyio.to_thread.run_sync(store.ensure_storage_id)
            debris = await anyio.to_thread.run_sync(
                store.remove_crash_debris, settings.media_debris_grace_seconds
            )
            if debris:
                logger.warning(
                    "removed %d temp files left by a crash: %s", len(debris), ", ".join(debris[:20])
                )
            index = RunIndex(store, settings.media_index_path)
            stack.callback(index.close)
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
            stack.push_async_callback(nc.drain)
            js = nc.jetstream()
            await ensure_streams(js, settings.nats_stream_replicas)
            timeout = httpx.Timeout(settings.media_fetch_timeout_seconds, connect=5)
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=timeout))
            service = MediaService(
                store,
                ComfyViewSource(http),
                JetStreamPublisher(js),
                fetch_attempts=settings.media_fetch_attempts,
            )
            app.state.media = MediaState(settings, service, storage_id, nc, catalog, store)
            consumer = build_consumer(js, service, settings.media_consumer_concurrency)
            await consumer.start()
            stack.push_async_callback(consumer.stop)
            await stack.enter_async_context(
                periodic_task(
                    "recent index sync",
                    settings.media_index_sync_seconds,
                    partial(catalog.sync_index, recent_days=RECENT_DAYS),
                    logger,
                )
            )
            await stack.enter_async_context(
                periodic_task(
                    "full index sync",
                    settings.media_index_full_sync_seconds,
                    catalog.sync_index,
                    logger,
                    wait_first=True,  # the start-up sync was a full one
                )
            )
            if settings.retention_days is not None:
                await stack.enter_async_context(
                    periodic_task(
                        "retention",
                        settings.retention_interval_seconds,
                        partial(catalog.apply_retention, settings.retention_days),
                        logger,
                    )
                )
            yield

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
