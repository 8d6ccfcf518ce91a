"""The gateway's client of the internal services, on an in-memory transport: unreachable → 503,
timed out → 504, a 5xx → 502, an upstream 4xx JSON error passed through unchanged."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from kiln_common.logging import current_request_id
from kiln_contracts.errors import ErrorCode
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunError, RunRequest, RunStatus, Stage
from kiln_gateway.errors import GatewayError
from kiln_gateway.upstream import MediaRunRecords, Upstream

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]


def upstream(handler: Handler) -> Upstream:
    return Upstream(
        "media-service", "http://media/", httpx.AsyncClient(transport=httpx.MockTransport(handler))
    )


async def failure_of(handler: Handler) -> GatewayError:
    with pytest.raises(GatewayError) as raised:
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
    with pytest.raises(GatewayError) as raised:
        async with client.stream("/runs/x/files/y", headers={}):
            pytest.fail("the body of a failed stream must not be opened")
    assert (raised.value.code, raised.value.status_code) == ("blocked", 451)


async def test_media_run_records_create_read_and_fail_over_http() -> None:
    run_id = new_run_id()
    calls: list[tuple[str, str, bytes]] = []
    record = {
        "run_id": run_id,
        "status": "queued",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "request": {"workflow": "noise", "input_text": "a red kite", "params": {}},
    }

    def media(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path, request.content))
        return httpx.Response(200 if request.method == "GET" else 201, json=record)

    records = MediaRunRecords(upstream(media))
    request = RunRequest(workflow="noise", input_text="a red kite")
    created = await records.create(run_id, request)
    fetched = await records.get(run_id)
    await records.fail(
        run_id, RunError(stage=Stage.GATEWAY, code=ErrorCode.QUEUE_UNAVAILABLE, message="x")
    )

    assert created.status is RunStatus.QUEUED
    assert fetched.run_id == run_id
    assert [(method, path) for method, path, _ in calls] == [
        ("POST", "/runs"),
        ("GET", f"/runs/{run_id}"),
        ("POST", f"/runs/{run_id}/fail"),
    ]
    assert f'"run_id":"{run_id}"'.encode() in calls[0][2].replace(b" ", b"")
    assert b"queue_unavailable" in calls[2][2]
