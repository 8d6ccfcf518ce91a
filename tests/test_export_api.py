"""Research exports through the gateway, on the real stack (NATS, services, simulator)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from kiln_contracts.ids import new_run_id
from kiln_contracts.layout import run_relpath
from kiln_devstack.stack import Stack
from kiln_gateway.auth import DEV_RESEARCHER_TOKEN
from support.export_checks import check_rows_against_runs, open_bag
from support.kiln_polling import eventually, wait_final

pytestmark = pytest.mark.integration

AUTH = {"authorization": f"Bearer {DEV_RESEARCHER_TOKEN}"}


def make_runs(gateway: httpx.Client, count: int, text: str = "a red kite") -> list[str]:
    run_ids = []
    for i in range(count):
        response = gateway.post(
            "/api/runs",
            json={
                "workflow": "noise",
                "input_text": f"{text} {i}",
                "params": {"width": 32, "height": 24},
            },
        )
        assert response.status_code == 202, response.text
        run_ids.append(response.json()["run_id"])
    for run_id in run_ids:
        assert wait_final(gateway, run_id)["status"] == "completed"
    return run_ids


@pytest.fixture(scope="module")
def researcher(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30, headers=AUTH) as client:
        yield client


@pytest.fixture(scope="module")
def runs(researcher: httpx.Client) -> list[str]:
    return make_runs(researcher, 3)


def wait_export(client: httpx.Client, export_id: str, timeout: float = 60) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        response = client.get(f"/api/exports/{export_id}")
        assert response.status_code == 200, response.text
        status: dict[str, Any] = response.json()
        return status if status["state"] in ("completed", "failed") else None

    return eventually(probe, timeout, f"export {export_id} to finish")


def read_sse(client: httpx.Client, export_id: str) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", f"/api/exports/{export_id}/events") as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event:
                events.append((event, json.loads(line.removeprefix("data: "))))
    return events


def download(client: httpx.Client, export_id: str, into: Path, name: str) -> Path:
    path = into / name
    with client.stream("GET", f"/api/exports/{export_id}/download") as response:
        assert response.status_code == 200, response.read()
        with path.open("wb") as handle:
            for chunk in response.iter_bytes():
                handle.write(chunk)
    return path


def test_exports_need_the_researcher_role(stack: Stack, runs: list[str]) -> None:
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as anonymous:
        assert anonymous.post("/api/exports", json={}).status_code == 401
        assert anonymous.get(f"/api/exports/stream?run_id={runs[0]}").status_code == 401
        wrong = anonymous.get(
            f"/api/exports/{new_run_id()}", headers={"authorization": "Bearer nope"}
        )
        assert wrong.status_code == 403
        assert wrong.json()["error"] == "forbidden"


def test_background_zip_export_is_a_valid_bag_with_progress_and_range(
    researcher: httpx.Client, runs: list[str], stack: Stack, tmp_path: Path
) -> None:
    response = researcher.post("/api/exports", json={"filter": {"run_ids": runs}, "format": "zip"})
    assert response.status_code == 202, response.text
    export_id = response.json()["export_id"]

    events = read_sse(researcher, export_id)  # ends by itself after completed or failed
    assert events[0][0] == "status"
    # A small export may finish before the stream opens: then its first status says so.
    final_name, final = events[-1]
    assert final_name == "completed" or (
        final_name == "status" and final["state"] == "completed"
    ), events
    assert final["runs_total"] == 3

    status = wait_export(researcher, export_id)
    assert status["state"] == "completed", status.get("error")
    assert (status["runs_done"], status["runs_total"]) == (3, 3)
    assert status["bytes"] > 0
    assert status["expires_at"] is not None

    archive = download(researcher, export_id, tmp_path, "export.zip")
    assert archive.stat().st_size == status["bytes"]
    bag_dir = open_bag(archive, tmp_path / "bag")
    check_rows_against_runs(bag_dir, researcher, runs)

    # Range: a resumed download gets exactly the bytes it asks for.
    whole = archive.read_bytes()
    part = researcher.get(f"/api/exports/{export_id}/download", headers={"range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(whole)}"
    assert part.content == whole[100:1100]

    # Progress went over NATS (stream EXPORTS), not only to this client.
    async def last_completed() -> dict[str, Any]:
        nc = await nats.connect(stack.nats_url)
        try:
            message = await nc.jetstream().get_last_msg("EXPORTS", f"exports.{export_id}.completed")
            return dict(json.loads(message.data))
        finally:
            await nc.close()

    completed = asyncio.run(last_completed())
    assert completed["sha256"] == status["sha256"]


def test_tar_gz_export_is_a_valid_bag(
    researcher: httpx.Client, runs: list[str], tmp_path: Path
) -> None:
    response = researcher.post(
        "/api/exports", json={"filter": {"run_ids": runs[:2]}, "format": "tar.gz"}
    )
    assert response.status_code == 202, response.text
    export_id = response.json()["export_id"]
    assert wait_export(researcher, export_id)["state"] == "completed"
    bag_dir = open_bag(download(researcher, export_id, tmp_path, "export.tar.gz"), tmp_path / "bag")
    check_rows_against_runs(bag_dir, researcher, runs[:2])


def test_small_selection_streams_at_once(
    researcher: httpx.Client, runs: list[str], tmp_path: Path
) -> None:
    query = "&".join(f"run_id={r}" for r in runs)
    response = researcher.get(f"/api/exports/stream?{query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["x-kiln-runs"] == "3"
    archive = tmp_path / "stream.zip"
    archive.write_bytes(response.content)
    check_rows_against_runs(open_bag(archive, tmp_path / "bag"), researcher, runs)


@pytest.fixture
def damaged_run(
    researcher: httpx.Client, storage_root: Path
) -> Iterator[Callable[[str], tuple[str, dict[str, Any]]]]:
    """Makes completed runs whose output then rots on disk (same size, one byte flipped), and
    deletes them afterwards so no other test on the shared stack exports a rotten run."""
    made: list[str] = []

    def make(text: str) -> tuple[str, dict[str, Any]]:
        [run_id] = make_runs(researcher, 1, text)
        made.append(run_id)
        record = researcher.get(f"/api/runs/{run_id}").json()
        output: dict[str, Any] = next(e for e in record["entities"] if e["type"] == "output_image")
        path = storage_root / run_relpath(run_id) / output["filename"]
        data = path.read_bytes()
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
        return run_id, output

    yield make
    for run_id in made:
        assert researcher.delete(f"/api/runs/{run_id}").status_code == 200


def test_a_file_that_does_not_match_its_checksum_fails_the_export(
    researcher: httpx.Client, damaged_run: Callable[[str], tuple[str, dict[str, Any]]]
) -> None:
    run_id, output = damaged_run("to be damaged")

    response = researcher.post("/api/exports", json={"filter": {"run_ids": [run_id]}})
    status = wait_export(researcher, response.json()["export_id"])
    assert status["state"] == "failed"
    assert status["error"]["code"] == "integrity_failed"
    assert status["error"]["run_id"] == run_id
    assert status["error"]["filename"] == output["filename"]
    assert run_id in status["error"]["message"]
    failed = researcher.get(f"/api/exports/{status['export_id']}/download")
    assert failed.status_code == 409
    assert failed.json()["error"] == "export_failed"


def test_bad_export_requests_get_clear_errors(researcher: httpx.Client) -> None:
    bad_id = researcher.get("/api/exports/not-an-id")
    assert bad_id.status_code == 400
    assert bad_id.json()["error"] == "invalid_export_id"
    missing = researcher.get(f"/api/exports/{new_run_id()}")
    assert missing.status_code == 404
    assert missing.json()["error"] == "export_not_found"
    backwards = researcher.post(
        "/api/exports",
        json={"filter": {"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}},
    )
    assert backwards.status_code == 422
    assert backwards.json()["error"] == "invalid_request"
    bad_format = researcher.post("/api/exports", json={"format": "rar"})
    assert bad_format.status_code == 422
    bad_run = researcher.get("/api/exports/stream?run_id=../../etc")
    assert bad_run.status_code == 422
    assert "run_ids" in bad_run.json()["detail"]


def test_a_damaged_file_in_a_streamed_export_leaves_a_visibly_failed_archive(
    researcher: httpx.Client,
    damaged_run: Callable[[str], tuple[str, dict[str, Any]]],
    tmp_path: Path,
) -> None:
    run_id, output = damaged_run("damaged while streamed")

    # The status line went out before the damage was seen, so it says 200; the transfer is
    # then cut off (never a clean end), and what arrived is an archive unzip refuses, whose
    # last entry names the run and the file.
    received = bytearray()

    def read_all() -> None:
        with researcher.stream("GET", f"/api/exports/stream?run_id={run_id}") as response:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                received.extend(chunk)

    with pytest.raises(httpx.RemoteProtocolError):
        read_all()
    archive = tmp_path / "failed.zip"
    archive.write_bytes(bytes(received))
    assert subprocess.run(["unzip", "-t", str(archive)], capture_output=True).returncode != 0
    note_at = received.rindex(b"/EXPORT-FAILED.txt")
    note = bytes(received[note_at:])
    assert run_id.encode() in note
    assert output["filename"].encode() in note


def test_runs_still_in_progress_are_skipped_and_listed(
    researcher: httpx.Client, simulator: httpx.Client, runs: list[str], tmp_path: Path
) -> None:
    assert simulator.post("/sim/faults", json={"node_delay_seconds": 5}).status_code == 200
    try:
        response = researcher.post("/api/runs", json={"workflow": "noise", "input_text": "slow"})
        slow = response.json()["run_id"]
        eventually(
            lambda: researcher.get(f"/api/runs/{slow}").json()["status"] == "running",
            20,
            "the slow run to be running",
        )
        created = researcher.post(
            "/api/exports", json={"filter": {"run_ids": [runs[0], slow]}}
        ).json()
        status = wait_export(researcher, created["export_id"])
    finally:
        simulator.post("/sim/faults", json={"node_delay_seconds": None})
    assert status["state"] == "completed", status.get("error")
    assert status["skipped_in_progress"] == [slow]
    assert status["runs_total"] == 1
    bag_dir = open_bag(
        download(researcher, created["export_id"], tmp_path, "x.zip"), tmp_path / "bag"
    )
    assert f"Kiln-Run-Skipped-In-Progress: {slow}" in (bag_dir / "bag-info.txt").read_text()
    assert not (bag_dir / "data" / run_relpath(slow)).exists()
    check_rows_against_runs(bag_dir, researcher, [runs[0]])
    wait_final(researcher, slow)
