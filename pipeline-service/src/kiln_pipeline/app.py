"""pipeline-service: turns requested runs into ComfyUI prompts and follows them to the end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI
from kiln_common.errors import install_error_handlers
from kiln_common.http import install_health_routes, install_request_context
from kiln_common.logging import configure_logging
from kiln_common.metrics import install_metrics
from kiln_common.nats import connect, ensure_streams, run_claims
from kiln_safety.screen import build_screen

from kiln_pipeline.api import router
from kiln_pipeline.capabilities import node_classes
from kiln_pipeline.comfy import ComfyClient
from kiln_pipeline.config import PipelineSettings
from kiln_pipeline.driver import PollPolicy, RunDriver
from kiln_pipeline.llm import ChatClient
from kiln_pipeline.messaging import (
    NatsRunEventSink,
    StreamCancelLedger,
    build_consumer,
    subscribe_cancels,
)
from kiln_pipeline.pool import Backend, BackendPool
from kiln_pipeline.state import PipelineState
from kiln_pipeline.templates import builtin_workflows_dir, load_templates
from kiln_pipeline.watcher import BackendWatcher


def create_app(settings: PipelineSettings | None = None) -> FastAPI:
    settings = settings or PipelineSettings()  # from the environment
    configure_logging("pipeline-service", settings.instance_id, settings.log_level)
    templates = load_templates(builtin_workflows_dir(), *settings.pipeline_workflows_dirs)
    # A bad safety policy stops the start here, before any run is taken.
    screen = build_screen(settings.safety_policy_dir, settings.safety_check_timeout_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each part is registered for clean-up as soon as it exists, so a start that fails
        # half-way closes what it had opened (in reverse order), as a normal stop does.
        async with AsyncExitStack() as stack:
            nc = await connect(settings, f"pipeline-service {settings.instance_id}")
            stack.push_async_callback(nc.drain)
            js = nc.jetstream()
            await ensure_streams(js, settings.nats_stream_replicas)
            http = await stack.enter_async_context(
                httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5))
            )
            # A fixed client id per pipeline instance: ComfyUI sends a prompt's messages only to
            # the websocket of the client that submitted it.
            client_id = f"kiln-pipeline-{settings.instance_id}"
            backends = []
            for index, url in enumerate(settings.comfyui_urls):
                client = ComfyClient(name=f"comfyui-{index}", url=url, http=http)
                watcher = BackendWatcher(client.name, client.ws_url(client_id))
                watcher.start()
                stack.push_async_callback(watcher.stop)
                backends.append(
                    Backend(client, watcher, client_id, settings.pipeline_max_in_flight_per_backend)
                )
            pool = BackendPool(
                backends, node_classes=node_classes(t.graph for t in templates.values())
            )
            await pool.check_all()
            pool.start_health_checks(settings.pipeline_health_interval_seconds)
            stack.push_async_callback(pool.stop)
            sink = NatsRunEventSink(nc, js)
            poll = PollPolicy(
                initial_seconds=settings.pipeline_poll_initial_seconds,
                max_seconds=settings.pipeline_poll_max_seconds,
                lost_grace_seconds=settings.pipeline_lost_grace_seconds,
                backend_down_seconds=settings.pipeline_backend_down_seconds,
                stop_confirm_seconds=settings.pipeline_stop_confirm_seconds,
            )
            llm = (
                ChatClient(settings.llm_url, http, settings.llm_timeout_seconds)
                if settings.llm_url
                else None
            )
            claims = await run_claims(js, settings.nats_stream_replicas)
            driver = RunDriver(
                templates, pool, sink, StreamCancelLedger(js, claims), poll, llm, screen=screen
            )
            app.state.pipeline = PipelineState(settings, templates, pool, nc)
            cancels = await subscribe_cancels(nc, driver)
            stack.push_async_callback(cancels.unsubscribe)
            consumer = build_consumer(js, driver, sink, pool.capacity)
            await consumer.start()
            stack.push_async_callback(consumer.stop)
            yield

    app = FastAPI(title="kiln pipeline-service", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    install_request_context(app)
    install_metrics(app, "pipeline-service")

    async def readiness() -> dict[str, str]:
        state: PipelineState = app.state.pipeline
        # Ready while any backend answers: the pool routes around the others. The health
        # checks keep each backend's state current; readiness only reads it.
        healthy = [b for b in state.pool.backends if b.healthy]
        problems = [f"{b.name}: {b.last_error}" for b in state.pool.backends if not b.healthy]
        return {
            "nats": "ok" if state.nc.is_connected else "disconnected",
            "comfyui": "ok" if healthy else "; ".join(problems)[:600],
        }

    install_health_routes(app, readiness)
    app.include_router(router)
    return app
