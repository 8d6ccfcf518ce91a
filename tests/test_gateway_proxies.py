"""Reading and research routes the gateway passes through to media-service under /api:
listing with participant scoping, media by kind, Range/ETag/304 preserved, blocking and
deletion for researchers only.

The listing, /media, block and deletion routes need media-service's internal endpoints
(issue 4); until those exist these tests fail with the upstream's 404/405 passed through.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from kiln_devstack.stack import Stack
from support.kiln_gateway_helpers import RESEARCHER, RUN_BODY
from support.kiln_polling import wait_final

pytestmark = pytest.mark.integration


@pytest.fixture
def other_device(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
        yield client


def completed_run(client: httpx.Client) -> dict[str, object]:
    response = client.post("/api/runs", json=RUN_BODY)
    assert response.status_code == 202, response.text
    record = wait_final(client, response.json()["run_id"])
    assert record["status"] == "completed", record
    return record


def image_of(record: dict[str, object]) -> str:
    entities = record["entities"]
    assert isinstance(entities, list)
    return next(e["filename"] for e in entities if e["type"] == "output_image")


def test_files_keep_range_etag_and_304_through_the_gateway(gateway: httpx.Client) -> None:
    record = completed_run(gateway)
    path = f"/api/runs/{record['run_id']}/files/{image_of(record)}"
    whole = gateway.get(path)
    assert whole.status_code == 200
    etag = whole.headers["etag"]
    assert whole.headers["cache-control"].startswith("public")
    assert gateway.get(path, headers={"If-None-Match": etag}).status_code == 304
    part = gateway.get(path, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206
    assert part.content == whole.content[:10]
    assert part.headers["content-range"].startswith("bytes 0-9/")


def test_participants_list_only_their_own_runs(
    gateway: httpx.Client, other_device: httpx.Client
) -> None:
    mine = {completed_run(gateway)["run_id"] for _ in range(2)}
    theirs = completed_run(other_device)["run_id"]
    me = gateway.get("/api/me").json()["device_id"]

    page = gateway.get("/api/runs", params={"limit": 200})
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert mine <= {r["run_id"] for r in items}
    assert theirs not in {r["run_id"] for r in items}
    assert {r["request"]["device_id"] for r in items} == {me}
    # Asking for another device's runs does not widen a participant's view.
    other_id = other_device.get("/api/me").json()["device_id"]
    sneaky = gateway.get("/api/runs", params={"device_id": other_id}).json()["items"]
    assert theirs not in {r["run_id"] for r in sneaky}

    # A researcher lists across devices and can filter by one.
    theirs_only = gateway.get(
        "/api/runs", params={"device_id": other_id}, headers=RESEARCHER
    ).json()["items"]
    assert {r["run_id"] for r in theirs_only} == {theirs}


def test_listing_pages_with_cursors_newest_first(gateway: httpx.Client) -> None:
    for _ in range(3):
        completed_run(gateway)
    first = gateway.get("/api/runs", params={"limit": 2}).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    second = gateway.get("/api/runs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    seen = [r["run_id"] for r in first["items"] + second["items"]]
    assert len(set(seen)) == len(seen)
    assert seen == sorted(seen, reverse=True)  # UUIDv7: newest first


def test_media_by_kind_streams_the_newest_output(gateway: httpx.Client) -> None:
    record = completed_run(gateway)
    run_id = record["run_id"]
    stored = gateway.get(f"/api/runs/{run_id}/files/{image_of(record)}").content
    newest = gateway.get(f"/api/media/image/{run_id}")
    assert newest.status_code == 200, newest.text
    assert newest.headers["content-type"] == "image/png"
    assert newest.content == stored
    assert gateway.get(f"/api/media/image/{run_id}/0").content == stored
    assert (
        gateway.get(f"/api/media/image/{run_id}", headers={"Range": "bytes=0-3"}).content
        == (stored[:4])
    )
    etag = newest.headers["etag"]
    assert (
        gateway.get(f"/api/media/image/{run_id}", headers={"If-None-Match": etag}).status_code
        == 304
    )
    missing = gateway.get(f"/api/media/audio/{run_id}")
    assert missing.status_code == 404
    assert missing.json()["error"]


def test_only_researchers_block_and_blocked_media_is_a_451(gateway: httpx.Client) -> None:
    record = completed_run(gateway)
    run_id, filename = record["run_id"], image_of(record)
    block = f"/api/runs/{run_id}/entities/{filename}/block"
    assert gateway.put(block, json={"reason": "x"}).status_code == 401
    blocked = gateway.put(block, json={"reason": "shows a face"}, headers=RESEARCHER)
    assert blocked.status_code == 200, blocked.text
    served = gateway.get(f"/api/runs/{run_id}/files/{filename}")
    assert served.status_code == 451
    assert "shows a face" in served.json()["detail"]
    assert gateway.delete(block, headers=RESEARCHER).status_code in (200, 204)
    assert gateway.get(f"/api/runs/{run_id}/files/{filename}").status_code == 200


def test_only_researchers_delete_runs(gateway: httpx.Client, other_device: httpx.Client) -> None:
    run_id = completed_run(gateway)["run_id"]
    assert gateway.delete(f"/api/runs/{run_id}").status_code == 401
    deleted = gateway.delete(f"/api/runs/{run_id}", headers=RESEARCHER)
    assert deleted.status_code in (200, 204), deleted.text
    assert gateway.get(f"/api/runs/{run_id}").status_code == 404

    theirs = {completed_run(other_device)["run_id"] for _ in range(2)}
    device_id = other_device.get("/api/me").json()["device_id"]
    assert gateway.post("/api/deletions", json={"device_id": device_id}).status_code == 401
    report = gateway.post("/api/deletions", json={"device_id": device_id}, headers=RESEARCHER)
    assert report.status_code == 200, report.text
    assert theirs <= set(report.json()["deleted"])
    for run_id in theirs:
        assert other_device.get(f"/api/runs/{run_id}").status_code == 404


def test_a_deletion_names_exactly_one_device_or_session(gateway: httpx.Client) -> None:
    for body in ({}, {"device_id": "a", "session_id": "b"}):
        response = gateway.post("/api/deletions", json=body, headers=RESEARCHER)
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_request"
