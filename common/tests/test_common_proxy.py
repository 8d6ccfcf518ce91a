"""The client of the internal services, on an in-memory transport: unreachable → 503,
timed out → 504, a 5xx or an unreadable answer → 502, an upstream 4xx JSON error passed through
unchanged; streamed answers pass through with their status, validators and redirects."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from kiln_common.errors import install_error_handlers
from kiln_common.logging import current_request_id
from kiln_common.proxy import Upstream, UpstreamError, pass_through

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]


def upstream(handler: Handler) -> Upstream:
    return Upstream(
        "media-service", "http://media/", httpx.AsyncClient(transport=httpx.MockTransport(handler))
    )


async def failure_of(handler: Handler) -> UpstreamError:
    with pytest.raises(UpstreamError) as raised:
        await upstream(handler).request("GET", "/runs")
    return raised.value


async def test_a_5xx_upstream_is_a_502() -> None:
    error = await failure_of(lambda _: httpx.Response(500, text="Traceback ..."))
    assert (error.code, error.status_code) == ("upstream_error", 502)
    assert "Traceback" not in error.detail  # internals stay inside


async def test_an_upstream_json_error_passes_through_unchanged() -> None:
    body = {"error": "run_not_found", "detail": "no run 0190"}
    error = await failure_of(lambda _: httpx.Response(404, json=body))
    assert (error.code, error.detail, error.status_code) == ("run_not_found", "no run 0190", 404)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(409, text="<html>conflict</html>"),
        httpx.Response(400, json=["not", "an", "error"]),
        httpx.Response(422, json={"error": "only a code"}),
    ],
)
async def test_an_upstream_4xx_without_our_error_shape_keeps_its_status(
    response: httpx.Response,
) -> None:
    error = await failure_of(lambda _: response)
    assert (error.code, error.status_code) == ("upstream_error", response.status_code)
    assert error.detail == f"media-service answered {response.status_code}"


async def test_a_timeout_is_a_504() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    error = await failure_of(slow)
    assert (error.code, error.status_code) == ("upstream_timeout", 504)


async def test_an_unreachable_upstream_is_a_503() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    error = await failure_of(refused)
    assert (error.code, error.status_code) == ("upstream_unavailable", 503)
    assert error.detail == "media-service is unavailable: ConnectError"


async def test_the_request_id_travels_with_the_call() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    token = current_request_id.set("req-42")
    try:
        answer = await upstream(record).get_json("/runs", headers={"x-extra": "1"})
    finally:
        current_request_id.reset(token)
    assert answer == {"ok": True}
    [request] = seen
    assert str(request.url) == "http://media/runs"
    assert request.headers["x-request-id"] == "req-42"
    assert request.headers["x-extra"] == "1"


async def test_a_stream_raises_an_upstream_error_before_any_byte() -> None:
    client = upstream(lambda _: httpx.Response(451, json={"error": "blocked", "detail": "no"}))
    with pytest.raises(UpstreamError) as raised:
        async with client.stream("/runs/x/files/y", headers={}):
            pytest.fail("the body of a failed stream must not be opened")
    assert (raised.value.code, raised.value.status_code) == ("blocked", 451)


async def test_an_answer_that_cannot_be_read_is_a_502_not_an_outage() -> None:
    def garbled(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip")
        )

    error = await failure_of(garbled)
    assert (error.code, error.status_code) == ("upstream_error", 502)


def proxy_app(handler: Handler) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    media = upstream(handler)

    @app.get("/files/{name}")
    async def file(name: str, request: Request) -> Response:
        return await pass_through(media, f"/files/{name}", request)

    return TestClient(app, follow_redirects=False)


def test_a_streamed_answer_keeps_its_status_range_and_validators() -> None:
    def media(request: httpx.Request) -> httpx.Response:
        if request.headers.get("if-none-match") == '"abc"':
            return httpx.Response(304, headers={"etag": '"abc"'})
        if request.url.path == "/files/archive":
            return httpx.Response(307, headers={"location": "https://s3.example/archive?sig=1"})
        assert request.headers["range"] == "bytes=0-3"
        return httpx.Response(
            206,
            stream=httpx.ByteStream(b"0123"),
            headers={"content-range": "bytes 0-3/10", "etag": '"abc"', "x-internal": "no"},
        )

    client = proxy_app(media)
    partial = client.get("/files/a", headers={"range": "bytes=0-3"})
    assert (partial.status_code, partial.content) == (206, b"0123")
    assert partial.headers["content-range"] == "bytes 0-3/10"
    assert partial.headers["etag"] == '"abc"'
    assert "x-internal" not in partial.headers
    unchanged = client.get("/files/a", headers={"if-none-match": '"abc"'})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    moved = client.get("/files/archive")
    assert moved.status_code == 307
    assert moved.headers["location"] == "https://s3.example/archive?sig=1"


def test_a_streamed_error_is_our_json_error() -> None:
    client = proxy_app(lambda _: httpx.Response(451, json={"error": "blocked", "detail": "no"}))
    response = client.get("/files/a")
    assert response.status_code == 451
    assert response.json() == {"error": "blocked", "detail": "no"}
