"""MediaRunRecords (the RunRecords port) over media-service's HTTP API, on an in-memory
transport."""

from __future__ import annotations

import httpx
import pytest
from kiln_common.proxy import Upstream
from kiln_contracts.errors import ErrorCode
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunError, RunRequest, RunStatus, Stage
from kiln_gateway.upstream import MediaRunRecords

pytestmark = pytest.mark.anyio


def upstream(handler: object) -> Upstream:
    return Upstream(
        "media-service",
        "http://media/",
        httpx.AsyncClient(transport=httpx.MockTransport(handler)),  # type: ignore[arg-type]
    )


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
