"""Observability: a request id that follows a run over HTTP and NATS into every service's
logs, and Prometheus /metrics on every service."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import httpx
import nats
import pytest
from kiln_contracts.subjects import HEADER_REQUEST_ID, RUNS_STREAM, RunEventName, run_event_subject
from kiln_devstack.stack import Stack
from support.kiln_gateway_helpers import RUN_BODY
from support.kiln_polling import eventually, wait_final

pytestmark = pytest.mark.integration


def log_lines(stack: Stack, service: str) -> list[dict[str, object]]:
    path = stack.logs_dir / f"{service}.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def stored_headers(nats_url: str, subject: str) -> dict[str, str]:
    async def read() -> dict[str, str]:
        nc = await nats.connect(nats_url)
        try:
            message = await nc.jetstream().get_last_msg(RUNS_STREAM, subject)
            return dict(message.headers or {})
        finally:
            await nc.close()

    return asyncio.run(read())


def test_the_request_id_follows_the_run_over_http_and_nats(
    stack: Stack, gateway: httpx.Client
) -> None:
    request_id = f"test-{uuid.uuid4().hex}"
    response = gateway.post("/api/runs", json=RUN_BODY, headers={"X-Request-ID": request_id})
    assert response.status_code == 202
    assert response.headers["x-request-id"] == request_id
    run_id = response.json()["run_id"]
    assert wait_final(gateway, run_id)["status"] == "completed"

    # In the NATS headers of the events the pipeline published while handling the request…
    for event in (RunEventName.STARTED, RunEventName.GENERATED):
        headers = stored_headers(stack.nats_url, run_event_subject(run_id, event))
        assert headers.get(HEADER_REQUEST_ID) == request_id, (event, headers)
    # …and on the log lines of every service about this run.
    for service in ("gateway", "pipeline", "media"):

        def tagged(service: str = service) -> bool:
            about = [line for line in log_lines(stack, service) if line.get("run_id") == run_id]
            return any(line.get("request_id") == request_id for line in about)

        eventually(tagged, timeout=10, what=f"{service} to log the request id")


def test_a_request_id_is_minted_when_missing_or_unsafe(gateway: httpx.Client) -> None:
    minted = gateway.get("/api/workflows").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", minted)
    unsafe = gateway.get("/api/workflows", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_every_service_serves_prometheus_metrics(stack: Stack) -> None:
    for name, service in (
        ("gateway", "gateway"),
        ("media", "media-service"),
        ("pipeline", "pipeline-service"),
        ("export", "export-service"),
    ):
        httpx.get(f"{stack.urls[name]}/system")  # at least one observed request
        response = httpx.get(f"{stack.urls[name]}/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        count = metric(response.text, "kiln_http_request_duration_seconds_count", service=service)
        assert count >= 1, name


def test_gateway_metrics_count_runs_by_state_stage_latency_and_queue_depth(
    stack: Stack, gateway: httpx.Client
) -> None:
    url = f"{stack.gateway_url}/metrics"
    before = httpx.get(url).text
    run_id = gateway.post("/api/runs", json=RUN_BODY).json()["run_id"]
    assert wait_final(gateway, run_id)["status"] == "completed"

    def counted() -> bool:
        after = httpx.get(url).text
        return all(
            metric(after, "kiln_runs_total", state=state)
            > metric(before, "kiln_runs_total", state=state)
            for state in ("queued", "running", "storing", "completed")
        )

    eventually(counted, timeout=10, what="the run's states to be counted")
    after = httpx.get(url).text
    assert metric(after, "kiln_run_stage_seconds_count", event="stored") > metric(
        before, "kiln_run_stage_seconds_count", event="stored"
    )
    assert "kiln_queue_depth " in after
    assert "kiln_storage_errors_total " in after
    # Latency by route template, never by raw path (one series per route, not per run).
    assert 'route="/api/runs/{run_id}"' in after
    assert run_id not in after
