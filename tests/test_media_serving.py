"""Serving from storage: validators, caching, Range, the replaced system's /media URLs,
blocking (451) and listing, on a real media-service process."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from kiln_contracts.ids import run_created_at
from kiln_contracts.subjects import RunEventName
from kiln_devstack.stack import Stack
from support.kiln_polling import eventually
from support.media_helpers import (
    create_run,
    generated_event,
    media,
    png_bytes,
    publish,
    put_on_simulator,
)

pytestmark = pytest.mark.integration
__all__ = ["media"]


@pytest.fixture(scope="module")
def stored_run(stack: Stack) -> dict[str, Any]:
    """A completed run with three images of different sizes (stored in that order)."""
    with httpx.Client(base_url=stack.urls["media"], timeout=10) as client:
        run_id = create_run(client)
        outputs = [
            put_on_simulator(stack, run_id, f"9_0000{n}_.png", png_bytes(10 + n, 5 + n))
            for n in (1, 2, 3)
        ]
        publish(stack, generated_event(stack, run_id, *outputs), RunEventName.GENERATED)

        def completed() -> dict[str, Any] | None:
            record: dict[str, Any] = client.get(f"/runs/{run_id}").json()
            return record if record["status"] == "completed" else None

        return eventually(completed, 30, "the run to complete")


def test_a_file_has_validators_and_caching_headers(
    media: httpx.Client, stored_run: dict[str, Any]
) -> None:
    entity = stored_run["entities"][1]
    url = f"/runs/{stored_run['run_id']}/files/{entity['filename']}"
    response = media.get(url)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == entity["sha256"]
    assert response.headers["content-type"] == "image/png"
    assert response.headers["etag"] == f'"{entity["sha256"]}"'
    assert "immutable" in response.headers["cache-control"]
    assert response.headers["accept-ranges"] == "bytes"
    modified = parsedate_to_datetime(response.headers["last-modified"])
    created = datetime.fromisoformat(entity["created_at"])
    assert abs(modified - created) < timedelta(seconds=1)

    head = media.head(url)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(entity["size"])


@pytest.mark.parametrize(
    "headers",
    [
        lambda e: {"If-None-Match": f'"{e["sha256"]}"'},
        lambda e: {"If-None-Match": f'"other", W/"{e["sha256"]}"'},
        lambda e: {"If-None-Match": "*"},
        lambda e: {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
    ],
)
def test_conditional_requests_get_304(
    media: httpx.Client, stored_run: dict[str, Any], headers: Any
) -> None:
    entity = stored_run["entities"][1]
    response = media.get(
        f"/runs/{stored_run['run_id']}/files/{entity['filename']}", headers=headers(entity)
    )
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == f'"{entity["sha256"]}"'


def test_a_changed_or_older_validator_gets_the_file(
    media: httpx.Client, stored_run: dict[str, Any]
) -> None:
    entity = stored_run["entities"][1]
    url = f"/runs/{stored_run['run_id']}/files/{entity['filename']}"
    assert media.get(url, headers={"If-None-Match": '"0000"'}).status_code == 200
    old = {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
    assert media.get(url, headers=old).status_code == 200


def test_ranges_seek_into_a_file(media: httpx.Client, stored_run: dict[str, Any]) -> None:
    entity = stored_run["entities"][1]
    url = f"/runs/{stored_run['run_id']}/files/{entity['filename']}"
    whole = media.get(url).content
    size = len(whole)

    part = media.get(url, headers={"Range": "bytes=8-23"})
    assert part.status_code == 206
    assert part.content == whole[8:24]
    assert part.headers["content-range"] == f"bytes 8-23/{size}"

    tail = media.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.content == whole[-10:]

    stale = media.get(url, headers={"Range": "bytes=0-3", "If-Range": '"not-it"'})
    assert stale.status_code == 200
    assert stale.content == whole

    beyond = media.get(url, headers={"Range": f"bytes={size + 10}-"})
    assert beyond.status_code == 416
    assert beyond.json()["error"] == "range_not_satisfiable"
    assert beyond.headers["content-range"] == f"bytes */{size}"

    malformed = media.get(url, headers={"Range": "pages=1-2"})
    assert malformed.status_code == 400
    assert malformed.json()["error"] == "invalid_request"


def test_media_urls_name_the_newest_or_the_nth_output_of_a_kind(
    media: httpx.Client, stored_run: dict[str, Any]
) -> None:
    run_id = stored_run["run_id"]
    images = [e for e in stored_run["entities"] if e["type"] == "output_image"]
    assert [(e["meta"]["width"], e["meta"]["height"]) for e in images] == [
        (11, 6),
        (12, 7),
        (13, 8),
    ]
    newest = media.get(f"/media/image/{run_id}")
    assert newest.status_code == 200
    assert newest.headers["etag"] == f'"{images[-1]["sha256"]}"'
    for n, entity in enumerate(images):
        nth = media.get(f"/media/image/{run_id}/{n}")
        assert nth.status_code == 200
        assert hashlib.sha256(nth.content).hexdigest() == entity["sha256"]

    missing = media.get(f"/media/image/{run_id}/3")
    assert missing.status_code == 404
    assert missing.json()["error"] == "file_not_found"
    assert "image output number 3" in missing.json()["detail"]
    none_of_kind = media.get(f"/media/audio/{run_id}")
    assert none_of_kind.status_code == 404
    assert "0 audio outputs" in none_of_kind.json()["detail"]
    assert media.get(f"/media/sculpture/{run_id}").json()["error"] == "not_found"
    assert media.get(f"/media/image/{run_id}/-1").status_code == 422


def test_blocked_media_is_never_served_but_kept(
    stack: Stack, media: httpx.Client, stored_run: dict[str, Any]
) -> None:
    run_id = stored_run["run_id"]
    entity = stored_run["entities"][3]  # the newest image
    url = f"/runs/{run_id}/files/{entity['filename']}"
    response = media.put(
        f"/runs/{run_id}/entities/{entity['filename']}/block", json={"reason": "shows a face"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["blocked"]["reason"] == "shows a face"
    try:
        for path in (url, f"/media/image/{run_id}", f"/media/image/{run_id}/2"):
            refused = media.get(path)
            assert refused.status_code == 451, path
            assert refused.json()["error"] == "blocked"
            assert "shows a face" in refused.json()["detail"]
            # Even a matching validator does not reveal it.
            again = media.get(path, headers={"If-None-Match": f'"{entity["sha256"]}"'})
            assert again.status_code == 451
        record = media.get(f"/runs/{run_id}").json()
        assert record["entities"][3]["blocked"]["reason"] == "shows a face"
        assert record["events"][-1]["event"] == "blocked"
        kept = stack.storage_root.glob(f"runs/*/{run_id}/{entity['filename']}")
        assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in kept] == [entity["sha256"]]
    finally:
        unblocked = media.delete(f"/runs/{run_id}/entities/{entity['filename']}/block")
    assert unblocked.status_code == 200
    assert unblocked.json()["blocked"] is None
    assert media.get(url).status_code == 200


def test_blocking_needs_a_reason_and_a_listed_file(
    media: httpx.Client, stored_run: dict[str, Any]
) -> None:
    run_id = stored_run["run_id"]
    base = f"/runs/{run_id}/entities"
    empty = media.put(f"{base}/02_output_image.png/block", json={"reason": ""})
    assert empty.status_code == 422
    unknown = media.put(f"{base}/09_output_image.png/block", json={"reason": "x"})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "file_not_found"
    bad = media.put(f"{base}/metadata.json/block", json={"reason": "x"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_filename"
    no_run = media.put(
        "/runs/01900000-0000-7000-8000-000000000000/entities/01_input.txt/block",
        json={"reason": "x"},
    )
    assert no_run.status_code == 404
    assert no_run.json()["error"] == "run_not_found"


def test_listing_newest_first_with_filters_and_stable_cursors(media: httpx.Client) -> None:
    device = f"device-{datetime.now(UTC).timestamp()}"
    ids = [create_run(media, device_id=device, session_id=f"s{n % 2}") for n in range(7)]
    newest_first = list(reversed(ids))

    first = media.get("/runs", params={"device_id": device, "limit": 3}).json()
    assert [r["run_id"] for r in first["items"]] == newest_first[:3]
    assert first["next_cursor"]
    newer = create_run(media, device_id=device)  # arrives between two pages
    second = media.get(
        "/runs", params={"device_id": device, "limit": 3, "cursor": first["next_cursor"]}
    ).json()
    assert [r["run_id"] for r in second["items"]] == newest_first[3:6]
    third = media.get(
        "/runs", params={"device_id": device, "limit": 3, "cursor": second["next_cursor"]}
    ).json()
    assert [r["run_id"] for r in third["items"]] == newest_first[6:]
    assert third["next_cursor"] is None

    sessions = media.get("/runs", params={"device_id": device, "session_id": "s1"}).json()
    assert [r["run_id"] for r in sessions["items"]] == [i for i in newest_first if ids.index(i) % 2]
    everything = media.get("/runs", params={"device_id": device, "status": "queued"}).json()
    assert everything["items"][0]["run_id"] == newer
    completed = media.get("/runs", params={"device_id": device, "status": "completed"}).json()
    assert completed["items"] == []

    # since/until compare the instant in the run id (when the gateway accepted the run).
    since, until = run_created_at(ids[4]), run_created_at(ids[6])
    window = media.get(
        "/runs",
        params={"device_id": device, "since": since.isoformat(), "until": until.isoformat()},
    ).json()
    assert [r["run_id"] for r in window["items"]] == [
        i for i in newest_first if since <= run_created_at(i) < until
    ]
    assert ids[4] in {r["run_id"] for r in window["items"]}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": 0}, "invalid_request"),
        ({"limit": 501}, "invalid_request"),
        ({"status": "exploded"}, "invalid_request"),
        ({"since": "yesterday"}, "invalid_request"),
        ({"since": "2026-11-21T10:00:00"}, "invalid_request"),  # no zone: not guessed
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"cursor": "x" * 300}, "invalid_request"),
    ],
)
def test_bad_listing_parameters(media: httpx.Client, params: dict[str, Any], code: str) -> None:
    response = media.get("/runs", params=params)
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"] == code
