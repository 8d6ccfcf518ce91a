"""Every failure answers in one JSON shape, never HTML or a traceback."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from kiln_common.errors import ServiceError, install_error_handlers
from kiln_common.http import install_request_context
from kiln_common.metrics import install_metrics
from kiln_contracts.errors import MappedError


class GoneError(MappedError):
    """A domain error that knows its answer; no route translates it."""

    code = "widget_gone"
    status_code = 410


def app_with_failures() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_request_context(app)
    install_metrics(app, "test-service")

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    @app.get("/busy")
    async def busy() -> None:
        raise ServiceError("queue_full", "too many", 429, headers={"Retry-After": "5"})

    @app.get("/gone")
    async def gone() -> None:
        raise GoneError("the widget went away")

    @app.get("/items/{number}")
    async def item(number: int) -> dict[str, int]:
        return {"number": number}

    return app


def test_an_unexpected_error_is_a_json_500_without_internals() -> None:
    client = TestClient(app_with_failures(), raise_server_exceptions=False)
    response = client.get("/bug")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "internal", "detail": "internal error; it has been logged"}
    assert "passwd" not in response.text
    assert "Traceback" not in response.text


def test_service_errors_keep_their_headers() -> None:
    response = TestClient(app_with_failures()).get("/busy")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"error": "queue_full", "detail": "too many"}


def test_routing_and_validation_errors_are_json() -> None:
    client = TestClient(app_with_failures())
    assert client.get("/nowhere").json()["error"] == "not_found"
    assert client.post("/items/1").json()["error"] == "method_not_allowed"
    invalid = client.get("/items/abc")
    assert invalid.status_code == 422
    assert invalid.json()["error"] == "invalid_request"


def test_metrics_label_routes_by_template() -> None:
    client = TestClient(app_with_failures(), raise_server_exceptions=False)
    client.get("/items/41")
    client.get("/items/42")
    client.get("/bug")
    text = client.get("/metrics").text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("kiln_http_request_duration_seconds_count")
        and 'route="/items/{number}",service="test-service",status="200"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) >= 2
    assert 'route="/items/42"' not in text
    assert 'route="/bug",service="test-service",status="500"' in text


def test_a_mapped_error_answers_with_its_own_code_and_status() -> None:
    response = TestClient(app_with_failures()).get("/gone")
    assert response.status_code == 410
    assert response.json() == {"error": "widget_gone", "detail": "the widget went away"}
