"""The central promise (docs/design.md §2.1): one run id, minted once, from request to stored file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from kiln_contracts.ids import parse_run_id, run_date
from kiln_devstack.stack import Stack
from PIL import Image
from support.kiln_polling import wait_final

pytestmark = pytest.mark.integration


def test_a_run_travels_the_whole_system_under_one_id(
    gateway: httpx.Client, simulator: httpx.Client, stack: Stack, storage_root: Path
) -> None:
    response = gateway.post(
        "/api/runs",
        json={
            "workflow": "noise",
            "input_text": "a red kite",
            "params": {"width": 64, "height": 48},
        },
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    run_id = parse_run_id(accepted["run_id"])
    assert accepted["status"] == "queued"
    assert accepted["links"]["self"] == f"/api/runs/{run_id}"

    record = wait_final(gateway, run_id)
    assert record["status"] == "completed", record.get("error")
    assert record["run_id"] == run_id
    assert record["error"] is None
    assert [e["event"] for e in record["events"]] == ["created", "started", "generated", "stored"]

    # On the storage root, under the UTC day encoded in the id.
    folder = storage_root / "runs" / run_date(run_id).isoformat() / run_id
    on_disk = json.loads((folder / "metadata.json").read_text())
    assert on_disk["run_id"] == run_id
    assert on_disk["status"] == "completed"
    assert (folder / "01_input.txt").read_text() == "a red kite"
    workflow = json.loads((folder / "02_workflow.json").read_text())
    assert workflow["3"]["inputs"]["filename_prefix"] == f"kiln/{run_id}/3"

    images = [e for e in record["entities"] if e["type"] == "output_image"]
    assert len(images) == 1
    image = images[0]
    assert image["filename"] == "03_output_image.png"
    assert image["mime"] == "image/png"
    stored = (folder / image["filename"]).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == image["sha256"]
    assert len(stored) == image["size"]
    with Image.open(folder / image["filename"]) as png:
        png.verify()
    with Image.open(folder / image["filename"]) as png:
        assert png.size == (64, 48)

    # Served from storage through the gateway, byte for byte.
    served = gateway.get(f"/api/runs/{run_id}/files/{image['filename']}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.content == stored

    # The simulator saw our id as its prompt_id.
    prompts = simulator.get("/sim/prompts").json()
    assert run_id in json.dumps(prompts)

    # Every service logged about the run, and every log line that mentions it carries it.
    for service in ("gateway", "pipeline", "media"):
        lines = [
            json.loads(line)
            for line in (stack.logs_dir / f"{service}.log").read_text().splitlines()
            if line.startswith("{")
        ]
        about = [line for line in lines if run_id in json.dumps(line)]
        assert about, f"{service} logged nothing about the run"
        for line in about:
            assert line.get("run_id") == run_id, (service, line)


def test_the_gateway_lists_workflows(gateway: httpx.Client) -> None:
    response = gateway.get("/api/workflows")
    assert response.status_code == 200
    names = {w["name"]: w for w in response.json()}
    assert names["noise"]["kind"] == "image"
    assert names["noise"]["title"]["de"] == "Rauschbild"
    assert names["noise"]["params"]["width"]["maximum"] == 2048


def test_system_reports_every_service_and_one_storage_root(
    gateway: httpx.Client, storage_root: Path
) -> None:
    report = gateway.get("/api/system").json()
    services = {s["service"]: s for s in report["services"]}
    assert set(services) == {"gateway", "media-service", "pipeline-service", "export-service"}
    for info in services.values():
        assert info["instance_id"]
        assert info["version"]
    storage_id = (storage_root / "storage-id").read_text().strip()
    assert report["storage_ids"] == [storage_id]
    assert report["consistent"] is True
    assert (
        services["media-service"]["storage_id"]
        == services["export-service"]["storage_id"]
        == storage_id
    )
