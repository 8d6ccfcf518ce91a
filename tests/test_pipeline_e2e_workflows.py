"""Every built-in weight-free workflow, end to end through the gateway, with files of the right
format on the storage root (docs/design.md §6: these run on a real CPU-only ComfyUI too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from kiln_contracts.ids import run_date
from PIL import Image
from support.kiln_polling import wait_final

pytestmark = pytest.mark.integration


def _run(gateway: httpx.Client, workflow: str, params: dict[str, Any]) -> dict[str, Any]:
    response = gateway.post(
        "/api/runs", json={"workflow": workflow, "input_text": "", "params": params}
    )
    assert response.status_code == 202, response.text
    record = wait_final(gateway, response.json()["run_id"], timeout=60)
    assert record["status"] == "completed", record.get("error")
    return record


def _only_output(record: dict[str, Any], storage_root: Path) -> tuple[dict[str, Any], Path]:
    outputs = [e for e in record["entities"] if e["type"].startswith("output_")]
    assert len(outputs) == 1, outputs
    folder = storage_root / "runs" / run_date(record["run_id"]).isoformat() / record["run_id"]
    return outputs[0], folder / outputs[0]["filename"]


def test_the_catalogue_lists_the_four_weight_free_workflows_with_their_parameters(
    gateway: httpx.Client,
) -> None:
    response = gateway.get("/api/workflows")
    assert response.status_code == 200
    listed = {w["name"]: w for w in response.json()}
    assert {"noise", "animation", "audio", "video", "sd15_text_to_image"} <= set(listed)
    assert {listed[n]["kind"] for n in ("noise", "animation", "audio", "video")} == {
        "image",
        "animation",
        "audio",
        "video",
    }
    for name in ("animation", "audio", "video"):
        assert set(listed[name]["title"]) >= {"en", "de"}
    assert listed["animation"]["params"]["frames"]["minimum"] == 2
    assert listed["audio"]["params"]["duration"]["maximum"] == 60
    assert listed["sd15_text_to_image"]["params"]["checkpoint"]["type"] == "string"


def test_noise_gives_a_png(gateway: httpx.Client, storage_root: Path) -> None:
    record = _run(gateway, "noise", {"width": 40, "height": 30})
    entity, path = _only_output(record, storage_root)
    assert entity["type"] == "output_image"
    assert entity["mime"] == "image/png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (40, 30)


def test_animation_gives_an_animated_webp(gateway: httpx.Client, storage_root: Path) -> None:
    record = _run(gateway, "animation", {"width": 48, "height": 32, "frames": 5, "fps": 10})
    entity, path = _only_output(record, storage_root)
    assert entity["type"] == "output_animation"
    assert entity["filename"].endswith(".webp")
    assert entity["mime"] == "image/webp"
    assert path.read_bytes()[8:12] == b"WEBP"
    with Image.open(path) as image:
        assert image.format == "WEBP"
        assert image.is_animated
        assert image.n_frames == 5
        assert image.size == (48, 32)


def test_audio_gives_a_flac(gateway: httpx.Client, storage_root: Path) -> None:
    record = _run(gateway, "audio", {"duration": 1.5, "sample_rate": 22050, "channels": 1})
    entity, path = _only_output(record, storage_root)
    assert entity["type"] == "output_audio"
    assert entity["filename"].endswith(".flac")
    assert entity["mime"] == "audio/flac"
    assert path.read_bytes()[:4] == b"fLaC"
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "flac"
        assert stream.rate == 22050
        assert stream.channels == 1
        samples = sum(frame.samples for frame in container.decode(stream))
    assert samples == round(1.5 * 22050)


def test_video_gives_an_h264_mp4(gateway: httpx.Client, storage_root: Path) -> None:
    record = _run(gateway, "video", {"width": 64, "height": 128, "frames": 6, "fps": 12})
    entity, path = _only_output(record, storage_root)
    assert entity["type"] == "output_video"
    assert entity["filename"].endswith(".mp4")
    assert entity["mime"] == "video/mp4"
    assert path.read_bytes()[4:8] == b"ftyp"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(stream))
    assert len(frames) == 6
    assert (frames[0].width, frames[0].height) == (64, 128)


def test_each_run_gets_a_fresh_seed_unless_one_is_given_and_the_seed_is_recorded(
    gateway: httpx.Client, storage_root: Path
) -> None:
    seeds = []
    for params in ({}, {}, {"seed": 424242}):
        record = _run(gateway, "noise", {"width": 16, "height": 16, **params})
        workflow = next(e for e in record["entities"] if e["type"] == "workflow")
        folder = storage_root / "runs" / run_date(record["run_id"]).isoformat() / record["run_id"]
        graph = json.loads((folder / workflow["filename"]).read_text())
        # The seed sent to ComfyUI is the one recorded on the workflow entity.
        assert graph["2"]["inputs"]["seed"] == workflow["meta"]["seed"]
        seeds.append(workflow["meta"]["seed"])
    assert seeds[0] != seeds[1]
    assert seeds[2] == 424242
