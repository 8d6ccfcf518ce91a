"""The files Save nodes write: real formats, ComfyUI's metadata and ComfyUI's file names."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import av
import pytest
from comfyui_sim.media import OutsideOutputFolderError, get_save_image_path
from comfyui_sim.nodes import NodeContext, image_add_noise
from PIL import Image, ImageChops
from sim_helpers import (
    SimServer,
    audio_workflow,
    image_workflow,
    is_done,
    new_id,
    receive,
    receive_until,
    video_workflow,
    webp_workflow,
)


def _run(sim: SimServer, prompt: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    prompt_id = new_id()
    response = sim.submit(prompt, prompt_id=prompt_id, **kwargs)
    assert response.status_code == 200, response.text
    entry = sim.wait_history(prompt_id)
    assert entry["status"]["status_str"] == "success", entry["status"]
    return entry


def _file(sim: SimServer, output: dict[str, Any]) -> Path:
    folder = {"output": sim.output_dir, "temp": sim.temp_dir}[output["type"]]
    return folder / output["subfolder"] / output["filename"]


def test_save_image_writes_pngs_with_prompt_and_workflow_text_chunks(sim: SimServer) -> None:
    workflow = {"nodes": [{"id": 1}], "links": []}
    prompt = image_workflow(prefix="runs/run-1/image", batch_size=2)
    entry = _run(sim, prompt, extra_data={"extra_pnginfo": {"workflow": workflow}})
    images = entry["outputs"]["3"]["images"]
    assert images == [
        {"filename": "image_00001_.png", "subfolder": "runs/run-1", "type": "output"},
        {"filename": "image_00002_.png", "subfolder": "runs/run-1", "type": "output"},
    ]
    with Image.open(_file(sim, images[0])) as png:
        assert png.format == "PNG"
        assert png.size == (64, 48)
        assert json.loads(png.text["prompt"]) == entry["prompt"][2]
        assert json.loads(png.text["workflow"]) == workflow


def test_counter_continues_past_the_highest_existing_file(sim: SimServer) -> None:
    folder = sim.output_dir / "count"
    folder.mkdir(parents=True)
    (folder / "pic_00007_.png").write_bytes(b"")
    (folder / "other_00020_.png").write_bytes(b"")
    entry = _run(sim, image_workflow(prefix="count/pic"))
    assert entry["outputs"]["3"]["images"][0]["filename"] == "pic_00008_.png"
    entry = _run(sim, image_workflow(prefix="count/pic", seed=99))
    assert entry["outputs"]["3"]["images"][0]["filename"] == "pic_00009_.png"


def test_prefix_without_folder_writes_at_the_output_root(sim: SimServer) -> None:
    entry = _run(sim, image_workflow(prefix="plain"))
    assert entry["outputs"]["3"]["images"][0] == {
        "filename": "plain_00001_.png",
        "subfolder": "",
        "type": "output",
    }
    assert (sim.output_dir / "plain_00001_.png").is_file()


def test_prefix_escaping_the_output_folder_fails_the_run(sim: SimServer) -> None:
    prompt_id = new_id()
    with sim.websocket("c") as ws:
        receive(ws)
        sim.submit(image_workflow(prefix="../../escape"), client_id="c", prompt_id=prompt_id)
        messages = receive_until(ws, is_done(prompt_id))
    error = next(m["data"] for m in messages if m["type"] == "execution_error")
    assert error["node_id"] == "3"
    assert error["node_type"] == "SaveImage"
    assert "outside the output folder" in error["exception_message"]
    assert error["executed"] == ["1", "2"]
    assert not list(sim.output_dir.parent.glob("escape*"))
    assert sim.wait_history(prompt_id)["status"]["status_str"] == "error"


def test_preview_image_writes_to_temp(sim: SimServer) -> None:
    prompt = image_workflow()
    prompt["3"] = {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}
    entry = _run(sim, prompt)
    [image] = entry["outputs"]["3"]["images"]
    assert image["type"] == "temp"
    assert image["filename"].startswith("ComfyUI_temp_")
    with Image.open(_file(sim, image)) as png:
        assert png.format == "PNG"


def test_animated_webp(sim: SimServer) -> None:
    entry = _run(sim, webp_workflow(prefix="anim/clip", frames=4))
    output = entry["outputs"]["3"]
    assert output["animated"] == [True]
    [image] = output["images"]
    assert image == {"filename": "clip_00001_.webp", "subfolder": "anim", "type": "output"}
    with Image.open(_file(sim, image)) as webp:
        assert webp.format == "WEBP"
        assert webp.n_frames == 4
        assert webp.getexif()[0x0110].startswith("prompt:")


def test_flac_audio(sim: SimServer) -> None:
    entry = _run(sim, audio_workflow(prefix="audio/sound", seconds=0.5))
    [clip] = entry["outputs"]["2"]["audio"]
    assert clip == {"filename": "sound_00001_.flac", "subfolder": "audio", "type": "output"}
    path = _file(sim, clip)
    assert path.read_bytes()[:4] == b"fLaC"
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "flac"
        assert stream.rate == 44100
        assert stream.channels == 2
        samples = sum(frame.samples for frame in container.decode(stream))
        assert samples == 22050
        assert "prompt" in container.metadata


@pytest.mark.parametrize("with_audio", [True, False])
def test_mp4_video(sim: SimServer, with_audio: bool) -> None:
    entry = _run(sim, video_workflow(prefix="video/clip", with_audio=with_audio))
    output = entry["outputs"]["5"]
    assert output["animated"] == [True]
    [video] = output["images"]
    assert video == {"filename": "clip_00001_.mp4", "subfolder": "video", "type": "output"}
    path = _file(sim, video)
    assert path.read_bytes()[4:8] == b"ftyp"
    with av.open(str(path)) as container:
        kinds = {s.type: s.codec_context.name for s in container.streams}
        assert kinds["video"] == "h264"
        assert ("audio" in kinds) == with_audio
        frames = list(container.decode(video=0))
        assert len(frames) == 8
        assert (frames[0].width, frames[0].height) == (64, 48)
        assert json.loads(container.metadata["prompt"])["5"]["class_type"] == "SaveVideo"


def test_same_seed_same_pixels_other_seed_other_pixels(sim: SimServer) -> None:
    def pixels(seed: int, prefix: str) -> Image.Image:
        entry = _run(sim, image_workflow(prefix=prefix, seed=seed))
        with Image.open(_file(sim, entry["outputs"]["3"]["images"][0])) as png:
            return png.convert("RGB").copy()

    first = pixels(1, "seed/a")
    other = pixels(2, "seed/b")
    again = pixels(1, "seed/c")
    assert ImageChops.difference(first, again).getbbox() is None
    assert ImageChops.difference(first, other).getbbox() is not None


def test_noise_is_deterministic_without_any_cache(tmp_path: Path) -> None:
    context = NodeContext("1", tmp_path, tmp_path, tmp_path, {}, None)
    base = [Image.new("RGB", (16, 16), (128, 128, 128))] * 2

    def noise(seed: int) -> list[bytes]:
        [images] = image_add_noise(context, {"image": base, "seed": seed, "strength": 0.5}).outputs
        return [image.tobytes() for image in images]

    assert noise(5) == noise(5)
    assert noise(5) != noise(6)
    first, second = noise(5)
    assert first != second, "each image of a batch gets its own noise"
    assert noise(2**64 - 1) == noise(2**64 - 1)


def test_save_path_rules(tmp_path: Path) -> None:
    path = get_save_image_path("a/b/name", tmp_path)
    assert (path.subfolder, path.filename, path.counter) == ("a/b", "name", 1)
    assert path.full_output_folder == tmp_path / "a" / "b"
    assert path.full_output_folder.is_dir()
    (path.full_output_folder / "name_00003_.png").write_bytes(b"")
    (path.full_output_folder / "name_extra_00009_.png").write_bytes(b"")
    assert get_save_image_path("a/b/name", tmp_path).counter == 4
    sized = get_save_image_path("img_%width%x%height%", tmp_path, 64, 48)
    assert sized.filename == "img_64x48"
    for escaping in ("../x", "a/../../x", "/etc/x"):
        with pytest.raises(OutsideOutputFolderError):
            get_save_image_path(escaping, tmp_path)


def test_vhs_video_combine_writes_an_animated_gif_under_gifs(sim: SimServer) -> None:
    prompt = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 20, "height": 10, "batch_size": 3, "color": 0},
        },
        # Distinct frames: a GIF writer merges identical neighbours into one.
        "3": {
            "class_type": "ImageAddNoise",
            "inputs": {"image": ["1", 0], "seed": 1, "strength": 1.0},
        },
        "2": {
            "class_type": "VHS_VideoCombine",
            "inputs": {
                "images": ["3", 0],
                "frame_rate": 5.0,
                "loop_count": 0,
                "filename_prefix": "gif/clip",
                "format": "image/gif",
                "pingpong": False,
                "save_output": True,
            },
        },
    }
    [gif] = _run(sim, prompt)["outputs"]["2"]["gifs"]
    assert gif["filename"] == "clip_00001.gif"
    assert gif["type"] == "output"
    with Image.open(_file(sim, gif)) as image:
        assert image.format == "GIF"
        assert image.n_frames == 3
        assert image.size == (20, 10)


def test_save_glb_writes_binary_gltf_under_3d(sim: SimServer) -> None:
    prompt = {
        "1": {"class_type": "SimTetrahedron", "inputs": {"size": 2.0}},
        "2": {"class_type": "SaveGLB", "inputs": {"mesh": ["1", 0], "filename_prefix": "mesh/m"}},
    }
    [model] = _run(sim, prompt)["outputs"]["2"]["3d"]
    assert model == {"filename": "m_00001_.glb", "subfolder": "mesh", "type": "output"}
    data = _file(sim, model).read_bytes()
    magic, version, length = struct.unpack("<4sII", data[:12])
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_length, chunk_type = struct.unpack("<I4s", data[12:20])
    assert chunk_type == b"JSON"
    document = json.loads(data[20 : 20 + json_length])
    assert document["asset"]["version"] == "2.0"
    assert document["accessors"][0]["count"] == 4
    assert document["accessors"][0]["max"] == [2.0, 2.0, 2.0]
