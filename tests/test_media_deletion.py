"""Deleting runs (one, a device's, a session's) and the retention job, with every deletion in
the append-only audit log on the storage root."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uuid_utils
from kiln_contracts.layout import run_relpath
from kiln_contracts.records import utc_now
from kiln_devstack.stack import Stack
from support.kiln_polling import eventually
from support.media_helpers import create_run, media, media_replica

pytestmark = pytest.mark.integration
__all__ = ["media"]


@pytest.fixture(scope="module")
def retention_replica(stack: Stack) -> Iterator[httpx.Client]:
    """A second replica that applies a one-day retention every second."""
    env = {"KILN_RETENTION_DAYS": "1", "KILN_RETENTION_INTERVAL_SECONDS": "1"}
    with media_replica(stack, "media-retention", env) as client:
        yield client


def audit(storage_root: Path) -> list[dict[str, Any]]:
    path = storage_root / "audit" / "deletions.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_deleting_one_run(stack: Stack, media: httpx.Client) -> None:
    run_id = create_run(media, device_id="d-one")
    folder = stack.storage_root / run_relpath(run_id)
    assert folder.is_dir()
    before = (
        (stack.storage_root / "audit" / "deletions.jsonl").read_bytes()
        if audit(stack.storage_root)
        else b""
    )

    response = media.delete(f"/runs/{run_id}")
    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": [run_id]}
    assert not folder.exists()
    assert media.get(f"/runs/{run_id}").status_code == 404
    assert run_id not in {r["run_id"] for r in media.get("/runs").json()["items"]}
    again = media.delete(f"/runs/{run_id}")
    assert again.status_code == 404
    assert again.json()["error"] == "run_not_found"

    after = (stack.storage_root / "audit" / "deletions.jsonl").read_bytes()
    assert after.startswith(before), "the audit log is append-only"
    (line,) = [e for e in audit(stack.storage_root) if e["run_id"] == run_id]
    assert line["reason"] == "request"
    assert line["actor"] == "media-1"
    assert line["device_id"] == "d-one"
    assert line["files"] == ["01_input.txt"]


def test_deleting_a_device_or_a_session(
    stack: Stack, media: httpx.Client, retention_replica: httpx.Client
) -> None:
    stamp = utc_now().timestamp()
    device, other, session = f"dev-{stamp}", f"other-{stamp}", f"ses-{stamp}"
    mine = [create_run(media, device_id=device, session_id=f"{session}-{n}") for n in range(2)]
    # One made on the other replica a moment ago: deletion must not miss it.
    mine.append(create_run(retention_replica, device_id=device))
    kept = create_run(media, device_id=other, session_id=f"{session}-0")

    response = media.post("/deletions", json={"device_id": device})
    assert response.status_code == 200, response.text
    assert sorted(response.json()["deleted"]) == sorted(mine)
    for run_id in mine:
        assert retention_replica.get(f"/runs/{run_id}").status_code == 404
    assert media.get(f"/runs/{kept}").status_code == 200
    lines = [e for e in audit(stack.storage_root) if e.get("device_id") == device]
    assert sorted(e["run_id"] for e in lines) == sorted(mine)
    assert {e["reason"] for e in lines} == {"device request"}

    by_session = media.post("/deletions", json={"session_id": f"{session}-0"})
    assert by_session.json() == {"deleted": [kept]}
    assert media.post("/deletions", json={"device_id": device}).json() == {"deleted": []}


@pytest.mark.parametrize(
    "body",
    [{}, {"device_id": "a", "session_id": "b"}, {"device_id": ""}, {"session_id": 5}, [1]],
)
def test_a_deletion_names_exactly_one_device_or_session(media: httpx.Client, body: object) -> None:
    response = media.post("/deletions", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"


def test_retention_deletes_old_runs_only(
    stack: Stack, media: httpx.Client, retention_replica: httpx.Client
) -> None:
    three_days_ago = utc_now() - timedelta(days=3)
    old_id = str(uuid_utils.uuid7(nanoseconds=int(three_days_ago.timestamp() * 1e3) * 1_000_000))
    body = {"run_id": old_id, "request": {"workflow": "noise", "input_text": "old"}}
    assert media.post("/runs", json=body).status_code == 201
    recent = create_run(media, input_text="new")

    eventually(
        lambda: media.get(f"/runs/{old_id}").status_code == 404, 30, "retention to delete it"
    )
    assert media.get(f"/runs/{recent}").status_code == 200
    (line,) = [e for e in audit(stack.storage_root) if e["run_id"] == old_id]
    assert line["reason"] == "retention (1 days)"
    assert line["actor"] == "media-retention"
