"""Entity meta from real outputs of every weight-free workflow, run through the whole system:
width/height for images, animations and video, duration for audio and video; and seeking
(Range) in stored audio and video through the /media URLs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support.kiln_polling import wait_final
from support.media_helpers import media

pytestmark = pytest.mark.integration
__all__ = ["media"]


def completed_output(gateway: httpx.Client, workflow: str, params: dict[str, Any]) -> Any:
    response = gateway.post(
        "/api/runs", json={"workflow": workflow, "input_text": "", "params": params}
    )
    assert response.status_code == 202, response.text
    record = wait_final(gateway, response.json()["run_id"], timeout=60)
    assert record["status"] == "completed", record.get("error")
    (output,) = [e for e in record["entities"] if e["type"].startswith("output_")]
    return record["run_id"], output


@pytest.mark.parametrize(
    ("workflow", "params", "meta"),
    [
        ("noise", {"width": 40, "height": 24}, {"width": 40, "height": 24}),
        (
            "animation",
            {"width": 48, "height": 32, "frames": 4, "fps": 8},
            {"width": 48, "height": 32},
        ),
        ("audio", {"duration": 1.5, "sample_rate": 22050, "channels": 1}, {"duration": 1.5}),
        (
            "video",
            {"width": 64, "height": 128, "frames": 12, "fps": 12},
            {"width": 64, "height": 128, "duration": 1.0},
        ),
    ],
)
def test_outputs_carry_their_size_and_duration(
    gateway: httpx.Client, workflow: str, params: dict[str, Any], meta: dict[str, float]
) -> None:
    _, output = completed_output(gateway, workflow, params)
    for key, expected in meta.items():
        assert output["meta"][key] == pytest.approx(expected, abs=0.1), (key, output["meta"])


@pytest.mark.parametrize(
    ("workflow", "kind", "params"),
    [
        ("audio", "audio", {"duration": 2, "sample_rate": 22050, "channels": 2}),
        ("video", "video", {"width": 128, "height": 128, "frames": 24, "fps": 12}),
    ],
)
def test_audio_and_video_can_be_sought(
    gateway: httpx.Client, media: httpx.Client, workflow: str, kind: str, params: dict[str, Any]
) -> None:
    run_id, output = completed_output(gateway, workflow, params)
    whole = media.get(f"/media/{kind}/{run_id}")
    assert whole.status_code == 200
    assert whole.headers["content-type"] == output["mime"]
    middle = output["size"] // 2
    part = media.get(f"/media/{kind}/{run_id}/0", headers={"Range": f"bytes={middle}-"})
    assert part.status_code == 206
    assert part.content == whole.content[middle:]
    assert part.headers["content-range"] == f"bytes {middle}-{output['size'] - 1}/{output['size']}"
