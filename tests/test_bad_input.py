"""Bad input gets a clear JSON error with the right status, and nothing is created or queued."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest
from kiln_contracts.subjects import RUNS_REQUESTED, RUNS_STREAM
from kiln_devstack.stack import Stack

pytestmark = pytest.mark.integration


def requested_count(nats_url: str) -> int:
    async def count() -> int:
        nc = await nats.connect(nats_url)
        try:
            info = await nc.jetstream().stream_info(RUNS_STREAM, subjects_filter=RUNS_REQUESTED)
            return int((info.state.subjects or {}).get(RUNS_REQUESTED, 0))
        finally:
            await nc.close()

    return asyncio.run(count())


def run_folders(storage_root: Path) -> set[Path]:
    return set(storage_root.glob("runs/*/*"))


@pytest.fixture
def nothing_created(stack: Stack, storage_root: Path) -> Iterator[None]:
    folders, queued = run_folders(storage_root), requested_count(stack.nats_url)
    yield
    assert run_folders(storage_root) == folders, "a rejected request created a run folder"
    assert requested_count(stack.nats_url) == queued, "a rejected request was queued"


@pytest.mark.usefixtures("nothing_created")
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        # The body names something that does not exist: a payload problem (issue 3), not a path.
        ({"workflow": "no-such-workflow", "input_text": "x"}, 422, "unknown_workflow"),
        ({"input_text": "x"}, 422, "invalid_request"),
        ({"workflow": "noise"}, 422, "invalid_request"),
        ({"workflow": "noise", "input_text": 42}, 422, "invalid_request"),
        (
            {"workflow": "noise", "input_text": "x", "params": {"width": 1_000_000}},
            422,
            "invalid_params",
        ),
        (
            {"workflow": "noise", "input_text": "x", "params": {"width": "wide"}},
            422,
            "invalid_params",
        ),
        ({"workflow": "noise", "input_text": "x", "params": {"nope": 1}}, 422, "invalid_params"),
        ({"workflow": "noise", "input_text": "x", "params": {"seed": -5}}, 422, "invalid_params"),
        ({"workflow": "noise", "input_text": "x" * 5000}, 422, "invalid_request"),
        ({"workflow": "noise", "input_text": "nul\x00byte"}, 422, "invalid_request"),
        ({"workflow": "noise", "input_text": "lone \ud800 surrogate"}, 422, "invalid_request"),
        ({"workflow": "noise", "input_text": "x", "extra": 1}, 422, "invalid_request"),
        ([1, 2, 3], 422, "invalid_request"),
    ],
)
def test_bad_run_requests(gateway: httpx.Client, body: object, status: int, code: str) -> None:
    # json.dumps escapes to ASCII, so even a lone surrogate travels as valid JSON text.
    response = gateway.post(
        "/api/runs", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert payload["error"] == code
    assert payload["detail"]


@pytest.mark.usefixtures("nothing_created")
@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b"\xff\xfe", b'{"workflow": "noise", "input_text": "x"']
)
def test_malformed_json_is_a_400(gateway: httpx.Client, raw: bytes) -> None:
    response = gateway.post("/api/runs", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "run_id",
    [
        "not-a-uuid",
        "01900000-0000-4000-8000-000000000000",  # UUIDv4
        "01900000-0000-7000-8000-00000000000A",  # upper case
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e",
    ],
)
def test_a_non_uuid7_run_id_in_any_path_is_a_400(gateway: httpx.Client, run_id: str) -> None:
    for path in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/files/03_output_image.png"):
        response = gateway.get(path)
        assert response.status_code in (400, 404), (path, response.text)
        assert response.json()["error"] in ("invalid_run_id", "not_found")


def test_an_unknown_run_is_a_404_that_says_so(gateway: httpx.Client) -> None:
    missing = "01900000-0000-7000-8000-000000000000"
    response = gateway.get(f"/api/runs/{missing}")
    assert response.status_code == 404
    assert response.json() == {
        "error": "run_not_found",
        "detail": f"no run {missing} on this storage root",
    }


@pytest.mark.parametrize(
    "filename",
    [
        "..%2Fmetadata.json",
        "metadata.json",
        ".lock",
        "03_output_image.PNG",
        "03_%C3%AFmage.png",
        "a" * 300,
    ],
)
def test_bad_filenames_are_refused_before_touching_disk(
    gateway: httpx.Client, filename: str
) -> None:
    response = gateway.get(f"/api/runs/01900000-0000-7000-8000-000000000000/files/{filename}")
    assert response.status_code in (400, 404)
    assert response.json()["error"] in ("invalid_filename", "not_found")


def test_unknown_routes_and_methods_answer_json(gateway: httpx.Client) -> None:
    response = gateway.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    response = gateway.delete("/api/workflows")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
