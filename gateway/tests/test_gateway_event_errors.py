"""Opening a run's live events: NATS failing is a 503 "unavailable", a bug is a logged 500
(it used to be reported as an outage too)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import nats.errors
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from kiln_common.errors import install_error_handlers
from kiln_contracts.ids import new_run_id
from kiln_gateway.api import router
from kiln_gateway.identity import Identity

TOKEN = "a-researcher-token-for-these-tests"


class BrokenJetStream:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def stream_info(self, name: str) -> Any:
        raise self.error


def client_with(error: Exception) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)

    @app.middleware("http")
    async def identity(request: Request, call_next: Any) -> Any:
        request.state.identity = Identity(device_id="device-1", session_id=None, issued_at=0)
        return await call_next(request)

    app.state.gateway = SimpleNamespace(
        settings=SimpleNamespace(gateway_sse_heartbeat_seconds=1.0),
        nc=None,
        js=BrokenJetStream(error),
        researcher_token=TOKEN,
    )
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    "outage", [nats.errors.TimeoutError(), nats.errors.ConnectionClosedError(), TimeoutError()]
)
def test_nats_failing_is_a_503(outage: Exception) -> None:
    response = client_with(outage).get(
        f"/api/runs/{new_run_id()}/events", headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 503
    assert response.json()["error"] == "queue_unavailable"


def test_a_bug_is_a_500_not_an_outage() -> None:
    response = client_with(TypeError("a programming error")).get(
        f"/api/runs/{new_run_id()}/events", headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 500
    assert response.json()["error"] == "internal"


def test_a_malformed_run_id_is_refused_before_nats_is_asked() -> None:
    response = client_with(TypeError("NATS must not be asked")).get(
        "/api/runs/not-a-run/events", headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_run_id"
