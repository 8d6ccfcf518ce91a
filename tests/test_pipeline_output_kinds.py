"""Every output kind (issue 3 item 4): images, animated images, gifs, audio, video and 3D files
of one run all reach the storage root; previews (``type: temp``) are left out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kiln_contracts.ids import run_date
from kiln_devstack.stack import Stack, StackConfig
from PIL import Image
from support.kiln_pipeline_testkit import start_run
from support.kiln_polling import wait_final

pytestmark = pytest.mark.integration

FRAMES = {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 16, "batch_size": 3}}
EVERY_KIND = {
    "1": {**FRAMES, "inputs": {**FRAMES["inputs"], "color": 0}},
    "2": {"class_type": "ImageAddNoise", "inputs": {"image": ["1", 0], "seed": 0, "strength": 1}},
    "10": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "k"}},
    "11": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    "12": {
        "class_type": "SaveAnimatedWEBP",
        "inputs": {
            "images": ["2", 0],
            "filename_prefix": "k",
            "fps": 6.0,
            "lossless": False,
            "quality": 80,
            "method": "default",
        },
    },
    "13": {
        "class_type": "VHS_VideoCombine",
        "inputs": {
            "images": ["2", 0],
            "frame_rate": 6.0,
            "loop_count": 0,
            "filename_prefix": "k",
            "format": "image/gif",
            "pingpong": False,
            "save_output": True,
        },
    },
    "3": {
        "class_type": "EmptyAudio",
        "inputs": {"duration": 0.5, "sample_rate": 8000, "channels": 1},
    },
    "14": {"class_type": "SaveAudio", "inputs": {"audio": ["3", 0], "filename_prefix": "k"}},
    "4": {"class_type": "CreateVideo", "inputs": {"images": ["2", 0], "fps": 6.0}},
    "15": {
        "class_type": "SaveVideo",
        "inputs": {"video": ["4", 0], "filename_prefix": "k", "format": "mp4", "codec": "h264"},
    },
    "5": {"class_type": "SimTetrahedron", "inputs": {"size": 1.0}},
    "16": {"class_type": "SaveGLB", "inputs": {"mesh": ["5", 0], "filename_prefix": "k"}},
}


@pytest.fixture(scope="module")
def kinds_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workflows = tmp_path_factory.mktemp("kinds-workflows")
    manifest = {
        "name": "test_every_kind",
        "title": {"en": "Every kind", "de": "Jede Art"},
        "kind": "image",
        "seed_targets": [{"node": "2", "input": "seed"}],
        "deadline_seconds": 60,
    }
    (workflows / "test_every_kind.json").write_text(json.dumps(EVERY_KIND))
    (workflows / "test_every_kind.manifest.json").write_text(json.dumps(manifest))
    config = StackConfig(
        var_dir=tmp_path_factory.mktemp("kinds-stack"),
        extra_env={"KILN_PIPELINE_WORKFLOWS_DIRS": str(workflows)},
    )
    with Stack(config) as running:
        yield running


def test_every_saved_file_of_every_kind_is_stored_and_previews_are_not(
    kinds_stack: Stack,
) -> None:
    with httpx.Client(base_url=kinds_stack.gateway_url, timeout=10) as gateway:
        run_id = start_run(gateway, "test_every_kind")
        record = wait_final(gateway, run_id, timeout=60)
    assert record["status"] == "completed", record["error"]
    outputs: dict[str, list[dict[str, Any]]] = {}
    for entity in record["entities"]:
        if entity["type"].startswith("output_"):
            outputs.setdefault(entity["meta"]["node"], []).append(entity)
    # Node 11 is the preview: left out. SaveImage wrote one PNG per frame.
    assert sorted(outputs, key=int) == ["10", "12", "13", "14", "15", "16"]
    kinds = {node: {(e["type"], e["mime"]) for e in found} for node, found in outputs.items()}
    assert kinds == {
        "10": {("output_image", "image/png")},
        "12": {("output_animation", "image/webp")},
        "13": {("output_animation", "image/gif")},
        "14": {("output_audio", "audio/flac")},
        "15": {("output_video", "video/mp4")},
        "16": {("output_model", "model/gltf-binary")},
    }
    assert len(outputs["10"]) == 3
    folder: Path = kinds_stack.storage_root / "runs" / run_date(run_id).isoformat() / run_id
    with Image.open(folder / outputs["13"][0]["filename"]) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 3
    assert (folder / outputs["16"][0]["filename"]).read_bytes()[:4] == b"glTF"
    assert (folder / outputs["14"][0]["filename"]).read_bytes()[:4] == b"fLaC"
