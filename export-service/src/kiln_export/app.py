"""export-service: reads the storage root (read-only) to build research archives (BagIt bags
as zip or tar.gz) onto its own exports volume or S3; reports the storage root's id at /system.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial

import anyio
from fastapi import FastAPI
from kiln_common.errors import install_error_handlers
from kiln_common.http import install_health_routes, install_request_context
from kiln_common.logging import configure_logging
from kiln_common.metrics import install_metrics
from kiln_common.nats import JetStreamPublisher, connect, ensure_streams
from kiln_common.periodic import periodic_task
from kiln_contracts.layout import STORAGE_ID_FILE
from kiln_storage.s3 import S3Location, s3_client

from kiln_export.api import router
from kiln_export.config import ExportSettings
from kiln_export.jobs import ARCHIVES_DIR, ExportJobs, JobStore
from kiln_export.messaging import NatsExportEventFeed, requested_consumer
from kiln_export.state import ExportServiceState
from kiln_export.targets import S3Target, VolumeTarget

logger = logging.getLogger("kiln.export")


def create_app(settings: ExportSettings | None = None) -> FastAPI:
    settings = settings or ExportSettings()  # from the environment
    configure_logging("export-service", settings.instance_id, settings.log_level)

    async def remove_expired(jobs: ExportJobs) -> None:
        """KILN_EXPORT_TTL: expired archives (volume or S3) and their records are removed."""
        removed = await anyio.to_thread.run_sync(jobs.cleanup)
        if removed:
            logger.info("removed %d expired exports", removed)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each part is registered for clean-up as soon as it exists, so a start that fails
        # half-way closes what it had opened (in reverse order), as a normal stop does.
        async with AsyncExitStack() as stack:
            nc = await connect(settings, f"export-service {settings.instance_id}")
            stack.push_async_callback(nc.drain)
            js = nc.jetstream()
            await ensure_streams(js, settings.nats_stream_replicas)
            store = await anyio.to_thread.run_sync(JobStore, settings.export_root)
            s3 = None
            if settings.export_s3_url:
                client = s3_client(
                    settings.export_s3_endpoint_url,
                    region=settings.export_s3_region,
                    max_attempts=5,
                )
                s3 = S3Target(client, S3Location.parse(settings.export_s3_url))
            volume = VolumeTarget(settings.export_root / ARCHIVES_DIR)
            jobs = ExportJobs(settings, store, volume, s3, JetStreamPublisher(js).publish)
            app.state.export = ExportServiceState(settings, nc, jobs, NatsExportEventFeed(nc))
            consumer = requested_consumer(
                js, jobs, settings.export_concurrency, settings.export_ack_wait_seconds
            )
            await consumer.start()
            stack.push_async_callback(consumer.stop)
            interval = min(
                settings.export_cleanup_interval_seconds, settings.export_ttl.total_seconds()
            )
            await stack.enter_async_context(
                periodic_task(
                    "export cleanup", max(interval, 0.5), partial(remove_expired, jobs), logger
                )
            )
            yield

    app = FastAPI(title="kiln export-service", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    install_request_context(app)
    install_metrics(app, "export-service")

    async def readiness() -> dict[str, str]:
        state: ExportServiceState = app.state.export
        # media-service writes the id; until it has, this root is not (yet) the shared one.
        storage_id = await anyio.to_thread.run_sync(state.read_storage_id)
        writable = settings.export_root.is_dir()
        return {
            "nats": "ok" if state.nc.is_connected else "disconnected",
            "exports": "ok" if writable else f"no exports root at {settings.export_root}",
            "storage": "ok" if storage_id else f"no {STORAGE_ID_FILE} in {settings.storage_root}",
        }

    install_health_routes(app, readiness)
    app.include_router(router)
    return app
