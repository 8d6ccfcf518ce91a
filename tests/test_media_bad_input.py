"""A corpus of hostile run ids and filenames against media-service itself: every one is a 4xx
JSON error, and not a byte from outside the run folder is read or written."""

from __future__ import annotations

import http.client
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from kiln_contracts.layout import run_relpath
from kiln_devstack.stack import Stack
from support.media_helpers import create_run, media

pytestmark = pytest.mark.integration
__all__ = ["media"]

CANARY = secrets.token_hex(16)

# Path segments as they go on the wire (already percent-encoded where needed).
BAD_RUN_IDS = [
    "..",
    "%2e%2e",
    "%2E%2E",
    "..%2f..%2fstorage-id",
    "%2e%2e%2f%2e%2e%2fstorage-id",
    "..%5c..%5cstorage-id",
    "%00",
    "01900000-0000-7000-8000-000000000000%00",
    "01900000-0000-7000-8000-00000000000A",  # upper case: refused, not rewritten
    "{01900000-0000-7000-8000-000000000000}",
    "01900000-0000-4000-8000-000000000000",  # UUIDv4
    quote("\uff101900000-0000-7000-8000-000000000000"),  # fullwidth digit
    quote("01900000-0000-7000-8000-00000000000\u0430"),  # Cyrillic a
    "0" * 5000,
    "%252e%252e",  # double-encoded
]

BAD_FILENAMES = [
    "..",
    "%2e%2e",
    "..%2fmetadata.json",
    "%2e%2e%2fmetadata.json",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fstorage-id",
    "..%5cmetadata.json",
    "%2fetc%2fpasswd",
    "%5cetc%5cpasswd",
    "metadata.json",
    ".lock",
    "01_input.txt%00",
    "01_input.txt%00.png",
    "%00",
    quote("\uff101_input.txt"),  # fullwidth zero
    quote("01_\u0456nput.txt"),  # Cyrillic i
    quote("01_input\u2024txt"),  # one-dot leader
    quote("01_input.txt\u200b"),  # zero-width space
    "01_input.txt%20",
    "01_input.TXT",
    "01_INPUT.txt",
    "a" * 300,
    "01_" + "a" * 5000 + ".txt",
    "CANARY",
    "..%2fCANARY",
    "%2e%2e%2f%2e%2e%2fCANARY",
]


def raw(base_url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """Send ``path`` byte for byte (HTTP clients would normalise dot segments first)."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def tree(root: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            stat = path.stat()
            found[str(path.relative_to(root))] = (stat.st_ino, stat.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def planted(stack: Stack) -> Iterator[dict[str, Any]]:
    """A run, and canary files beside its folder and at the root that must never leak."""
    with httpx.Client(base_url=stack.urls["media"], timeout=10) as client:
        run_id = create_run(client, input_text="hello")
    folder = stack.storage_root / run_relpath(run_id)
    canaries = [folder.parent / "CANARY", stack.storage_root / "CANARY", folder / "CANARY"]
    for path in canaries:
        path.write_text(CANARY)
    yield {"run_id": run_id, "folder": folder}
    for path in canaries:
        path.unlink()


def assert_refused(status: int, body: bytes, what: str) -> None:
    assert 400 <= status < 500, (what, status, body[:200])
    assert CANARY.encode() not in body, what
    assert b"schema_version" not in body, what  # no metadata.json read through a side door
    payload = json.loads(body)
    assert set(payload) == {"error", "detail"}, what
    assert payload["detail"], what


@pytest.mark.parametrize("run_id", BAD_RUN_IDS)
def test_bad_run_ids_are_refused_everywhere(
    stack: Stack, planted: dict[str, Any], run_id: str
) -> None:
    before = tree(stack.storage_root / "runs")
    base = stack.urls["media"]
    for method, path, body in [
        ("GET", f"/runs/{run_id}", None),
        ("GET", f"/runs/{run_id}/files/01_input.txt", None),
        ("GET", f"/media/image/{run_id}", None),
        ("GET", f"/media/image/{run_id}/0", None),
        ("PUT", f"/runs/{run_id}/entities/01_input.txt/block", b'{"reason": "x"}'),
        ("DELETE", f"/runs/{run_id}/entities/01_input.txt/block", None),
        ("DELETE", f"/runs/{run_id}", None),
    ]:
        status, answer = raw(base, method, path, body)
        assert_refused(status, answer, f"{method} {path[:80]}")
    assert tree(stack.storage_root / "runs") == before


@pytest.mark.parametrize("filename", BAD_FILENAMES)
def test_bad_filenames_are_refused(stack: Stack, planted: dict[str, Any], filename: str) -> None:
    before = tree(stack.storage_root)
    base, run_id = stack.urls["media"], planted["run_id"]
    for method, path, body in [
        ("GET", f"/runs/{run_id}/files/{filename}", None),
        ("HEAD", f"/runs/{run_id}/files/{filename}", None),
        ("PUT", f"/runs/{run_id}/entities/{filename}/block", b'{"reason": "x"}'),
        ("DELETE", f"/runs/{run_id}/entities/{filename}/block", None),
    ]:
        status, answer = raw(base, method, path, body)
        if method == "HEAD":
            assert 400 <= status < 500, (path[:80], status)
            continue
        assert_refused(status, answer, f"{method} {path[:80]}")
    assert tree(stack.storage_root) == before
    record = httpx.get(f"{base}/runs/{run_id}").json()
    assert all(e["blocked"] is None for e in record["entities"])


def test_a_bad_run_id_in_a_body_creates_nothing(stack: Stack) -> None:
    before = tree(stack.storage_root / "runs")
    for run_id in ["../../x", "01900000-0000-4000-8000-000000000000", "%2e%2e", ""]:
        body = json.dumps({"run_id": run_id, "request": {"workflow": "noise", "input_text": "x"}})
        status, answer = raw(stack.urls["media"], "POST", "/runs", body.encode())
        assert_refused(status, answer, run_id)
    assert tree(stack.storage_root / "runs") == before


def test_missing_things_are_404s_that_name_them(
    media: httpx.Client, planted: dict[str, Any]
) -> None:
    run_id = planted["run_id"]
    missing_run = "01900000-0000-7000-8000-000000000000"
    response = media.get(f"/runs/{missing_run}/files/01_input.txt")
    assert response.status_code == 404
    assert response.json() == {
        "error": "run_not_found",
        "detail": f"no run {missing_run} on this storage root",
    }
    response = media.get(f"/runs/{run_id}/files/07_output_image.png")
    assert response.status_code == 404
    assert response.json() == {
        "error": "file_not_found",
        "detail": f"run {run_id} has no file 07_output_image.png",
    }
    # The input itself is served: the folder is reachable, only the names around it are not.
    assert media.get(f"/runs/{run_id}/files/01_input.txt").content == b"hello"
