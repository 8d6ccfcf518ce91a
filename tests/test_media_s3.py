"""media-service with its storage root on S3 (KILN_STORAGE_URL=s3://bucket/prefix), against a
real S3 endpoint (SeaweedFS ``weed mini``), its own NATS and the ComfyUI simulator."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kiln_contracts.layout import run_relpath
from kiln_contracts.subjects import RunEventName
from kiln_devstack.processes import ManagedProcess, free_port, http_ok, wait_until
from kiln_devstack.stack import Stack
from kiln_storage.weed import WeedMini
from support.kiln_polling import eventually
from support.media_helpers import (
    create_run,
    generated_event,
    media_replica,
    png_bytes,
    publish,
    put_on_simulator,
    started_event,
)

pytestmark = pytest.mark.integration
BUCKET, PREFIX = "kiln-media", "root"


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeedMini]:
    with WeedMini(tmp_path_factory.mktemp("weed-media")) as server:
        yield server


@pytest.fixture(scope="module")
def s3(weed: WeedMini) -> Any:
    client = weed.client()
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A NATS of its own, so the S3 deployment never shares run events with the local one."""
    folder = tmp_path_factory.mktemp("nats-s3")
    port, monitor = free_port(), free_port()
    argv = [str(Path(sys.executable).parent / "nats-server"), "-a", "127.0.0.1", "-p", str(port)]
    argv += ["-m", str(monitor), "-js", "-sd", str(folder / "js")]
    process = ManagedProcess("nats-s3", argv, folder / "nats.log")
    process.start()
    try:
        healthz = f"http://127.0.0.1:{monitor}/healthz?js-enabled-only=true"
        wait_until(http_ok(healthz), 30, "NATS", process)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.fixture(scope="module")
def media_s3(
    stack: Stack, weed: WeedMini, s3: Any, own_nats: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    env = {
        "KILN_STORAGE_URL": f"s3://{BUCKET}/{PREFIX}",
        "KILN_NATS_URL": own_nats,
        "KILN_MEDIA_SPOOL_DIR": str(tmp_path_factory.mktemp("spool")),
        "AWS_ACCESS_KEY_ID": weed.access_key,
        "AWS_SECRET_ACCESS_KEY": weed.secret_key,
        "AWS_ENDPOINT_URL": weed.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with media_replica(stack, "media-s3", env) as client:
        yield client


def key(run_id: str, name: str) -> str:
    return f"{PREFIX}/{run_relpath(run_id)}/{name}"


def object_bytes(s3: Any, name: str) -> bytes:
    data: bytes = s3.get_object(Bucket=BUCKET, Key=name)["Body"].read()
    return data


def test_the_root_is_on_s3(media_s3: httpx.Client, s3: Any) -> None:
    info = media_s3.get("/system").json()
    assert info["storage_root"] == f"s3://{BUCKET}/{PREFIX}"
    assert object_bytes(s3, f"{PREFIX}/storage-id").decode().strip() == info["storage_id"]
    assert media_s3.get("/readyz").status_code == 200


def test_a_run_is_stored_and_served_from_s3(
    stack: Stack, media_s3: httpx.Client, s3: Any, own_nats: str
) -> None:
    run_id = create_run(media_s3, input_text="on s3", device_id="s3-device")
    assert object_bytes(s3, key(run_id, "01_input.txt")) == b"on s3"

    publish(stack, started_event(stack, run_id), RunEventName.STARTED, nats_url=own_nats)
    data = png_bytes(40, 30)
    output = put_on_simulator(stack, run_id, "9_00001_.png", data)
    event = generated_event(stack, run_id, output)
    publish(stack, event, RunEventName.GENERATED, nats_url=own_nats)

    def completed() -> dict[str, Any] | None:
        record: dict[str, Any] = media_s3.get(f"/runs/{run_id}").json()
        return record if record["status"] in ("completed", "failed") else None

    record = eventually(completed, 30, "the run to be stored on S3")
    assert record["status"] == "completed", record["error"]
    publish(stack, event, RunEventName.GENERATED, redelivery=True, nats_url=own_nats)
    image = record["entities"][2]
    assert (image["filename"], image["meta"]["width"], image["meta"]["height"]) == (
        "03_output_image.png",
        40,
        30,
    )
    assert object_bytes(s3, key(run_id, image["filename"])) == data
    assert hashlib.sha256(data).hexdigest() == image["sha256"]

    url = f"/runs/{run_id}/files/{image['filename']}"
    whole = media_s3.get(url)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["etag"] == f'"{image["sha256"]}"'
    assert whole.headers["content-type"] == "image/png"
    part = media_s3.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert media_s3.get(url, headers={"If-None-Match": whole.headers["etag"]}).status_code == 304
    assert media_s3.get(f"/media/image/{run_id}").content == data
    head = media_s3.head(url)
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(data)))

    listed = media_s3.get("/runs", params={"device_id": "s3-device"}).json()
    assert [r["run_id"] for r in listed["items"]] == [run_id]

    blocked = media_s3.put(
        f"/runs/{run_id}/entities/{image['filename']}/block", json={"reason": "review"}
    )
    assert blocked.status_code == 200
    assert media_s3.get(url).status_code == 451

    # The redelivered event changed nothing.
    again = media_s3.get(f"/runs/{run_id}").json()
    assert [e["filename"] for e in again["entities"]] == [
        "01_input.txt",
        "02_workflow.json",
        "03_output_image.png",
    ]

    deleted = media_s3.post("/deletions", json={"device_id": "s3-device"})
    assert deleted.json() == {"deleted": [run_id]}
    assert media_s3.get(f"/runs/{run_id}").status_code == 404
    left = s3.list_objects_v2(Bucket=BUCKET, Prefix=key(run_id, "")).get("Contents", [])
    assert left == []
    audit = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/audit/deletions/")["Contents"]
    entries = [object_bytes(s3, obj["Key"]) for obj in audit]
    assert any(run_id.encode() in entry for entry in entries)
