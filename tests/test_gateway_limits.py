"""Limits: runs per device per minute and queue depth → 429 with Retry-After; body size → 413;
CORS only for configured origins. Every refusal in the one JSON error shape."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kiln_devstack.stack import Stack
from support.kiln_gateway_helpers import RUN_BODY, gateway_replica, simulator_faults
from support.kiln_polling import eventually, wait_final

pytestmark = pytest.mark.integration

ORIGIN = "https://school.example"


@pytest.fixture(scope="module")
def limited(stack: Stack) -> Iterator[str]:
    with gateway_replica(
        stack,
        "gateway-limited",
        KILN_GATEWAY_RUNS_PER_DEVICE_PER_MINUTE="3",
        KILN_GATEWAY_MAX_BODY_BYTES="2048",
        KILN_GATEWAY_CORS_ORIGINS=ORIGIN,
    ) as url:
        yield url


@pytest.fixture(scope="module")
def limited_twin(stack: Stack) -> Iterator[str]:
    with gateway_replica(
        stack, "gateway-limited-twin", KILN_GATEWAY_RUNS_PER_DEVICE_PER_MINUTE="3"
    ) as url:
        yield url


def early_in_a_minute() -> None:
    """Rate windows are whole minutes: start a burst early in one so it cannot straddle two."""
    eventually(lambda: time.time() % 60 < 40, timeout=25, what="the start of a minute")


def assert_json_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == code
    assert response.json()["detail"]


def test_a_device_gets_a_429_with_retry_after_past_its_rate(limited: str) -> None:
    early_in_a_minute()
    with httpx.Client(base_url=limited, timeout=10) as child:
        for _ in range(3):
            assert child.post("/api/runs", json=RUN_BODY).status_code == 202
        refused = child.post("/api/runs", json=RUN_BODY)
        assert_json_error(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Another device in the same room is not held back by the first.
    with httpx.Client(base_url=limited, timeout=10) as neighbour:
        assert neighbour.post("/api/runs", json=RUN_BODY).status_code == 202


def test_the_rate_holds_across_replicas(limited: str, limited_twin: str) -> None:
    early_in_a_minute()
    with httpx.Client(base_url=limited, timeout=10) as child:
        assert child.get("/api/me").status_code == 200
        with httpx.Client(base_url=limited_twin, timeout=10, cookies=child.cookies) as twin:
            assert child.post("/api/runs", json=RUN_BODY).status_code == 202
            assert twin.post("/api/runs", json=RUN_BODY).status_code == 202
            assert child.post("/api/runs", json=RUN_BODY).status_code == 202
            assert_json_error(twin.post("/api/runs", json=RUN_BODY), 429, "rate_limited")


def test_a_deep_queue_gets_a_429(stack: Stack, gateway: httpx.Client, storage_root: Path) -> None:
    with (
        gateway_replica(stack, "gateway-shallow", KILN_GATEWAY_MAX_QUEUE_DEPTH="1") as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        with simulator_faults(stack, node_delay_seconds=1.0):
            slow = client.post("/api/runs", json=RUN_BODY)
            assert slow.status_code == 202
            refused = eventually(
                lambda: (r := client.post("/api/runs", json=RUN_BODY)).status_code == 429 and r,
                timeout=10,
                what="the queue-depth limit",
            )
            assert_json_error(refused, 429, "queue_full")
            assert int(refused.headers["retry-after"]) > 0
            before = set(storage_root.glob("runs/*/*"))
            assert client.post("/api/runs", json=RUN_BODY).status_code == 429
            assert set(storage_root.glob("runs/*/*")) == before, "a refused run was created"
            wait_final(client, slow.json()["run_id"], timeout=60)
        # Once the queue drains, runs are accepted again.
        eventually(
            lambda: client.post("/api/runs", json=RUN_BODY).status_code == 202,
            timeout=60,
            what="the queue to accept runs again",
        )


def test_a_large_body_is_a_413(limited: str) -> None:
    big = {**RUN_BODY, "input_text": "x" * 4000}
    assert_json_error(httpx.post(f"{limited}/api/runs", json=big), 413, "payload_too_large")


def test_a_large_streamed_body_without_length_is_a_413(limited: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"workflow": "noise", "input_text": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = httpx.post(
        f"{limited}/api/runs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_json_error(response, 413, "payload_too_large")


def test_cors_answers_only_configured_origins(limited: str, gateway: httpx.Client) -> None:
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    allowed = httpx.options(f"{limited}/api/runs", headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert allowed.headers["access-control-allow-credentials"] == "true"

    stranger = httpx.get(f"{limited}/api/workflows", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers
    simple = httpx.get(f"{limited}/api/workflows", headers={"Origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    # Without configured origins (the default) no cross-origin access at all.
    default = gateway.get("/api/workflows", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in default.headers
