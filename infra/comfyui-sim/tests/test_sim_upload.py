"""POST /upload/image and the image-input nodes (LoadImage, ImageScale) on a real server."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image
from sim_helpers import SimServer, new_id


def _png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def _upload(sim: SimServer, name: str, data: bytes, **fields: str) -> Any:
    return sim.http.post("/upload/image", files={"image": (name, data, "image/png")}, data=fields)


def _image_input_workflow(name: str, prefix: str, middle: dict[str, Any]) -> dict[str, Any]:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {**middle, "inputs": {**middle["inputs"], "image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def _run_and_open(sim: SimServer, prompt: dict[str, Any]) -> Image.Image:
    prompt_id = new_id()
    response = sim.submit(prompt, prompt_id=prompt_id)
    assert response.status_code == 200, response.text
    entry = sim.wait_history(prompt_id)
    assert entry["status"]["status_str"] == "success", entry["status"]
    output = entry["outputs"]["3"]["images"][0]
    return Image.open(sim.output_dir / output["subfolder"] / output["filename"])


def test_upload_stores_the_bytes_in_input_and_answers_the_name(sim: SimServer) -> None:
    data = _png(8, 6, (10, 20, 30))
    response = _upload(sim, "run-1.png", data)
    assert response.status_code == 200
    assert response.json() == {"name": "run-1.png", "subfolder": "", "type": "input"}
    assert (sim.input_dir / "run-1.png").read_bytes() == data
    assert sim.http.post("/api/upload/image", files={"image": ("b.png", data)}).status_code == 200
    info = sim.http.get("/object_info/LoadImage").json()["LoadImage"]
    assert info["input"]["required"]["image"] == [["b.png", "run-1.png"], {"image_upload": True}]
    assert info["output"] == ["IMAGE", "MASK"]


def test_a_taken_name_is_numbered_unless_same_bytes_or_overwrite(sim: SimServer) -> None:
    first, second = _png(4, 4, (1, 1, 1)), _png(4, 4, (2, 2, 2))
    assert _upload(sim, "x.png", first).json()["name"] == "x.png"
    assert _upload(sim, "x.png", first).json()["name"] == "x.png"  # same bytes: not written twice
    assert _upload(sim, "x.png", second).json()["name"] == "x (1).png"
    assert (sim.input_dir / "x (1).png").read_bytes() == second
    assert _upload(sim, "x.png", second, overwrite="true").json()["name"] == "x.png"
    assert (sim.input_dir / "x.png").read_bytes() == second


def test_type_and_subfolder_choose_the_folder(sim: SimServer) -> None:
    data = _png(4, 4, (3, 3, 3))
    response = _upload(sim, "t.png", data, type="temp", subfolder="runs/a")
    assert response.json() == {"name": "t.png", "subfolder": "runs/a", "type": "temp"}
    assert (sim.temp_dir / "runs" / "a" / "t.png").read_bytes() == data


def test_bad_uploads_are_400_and_write_nothing(sim: SimServer) -> None:
    data = _png(4, 4, (4, 4, 4))
    before = sorted(p.name for p in sim.input_dir.rglob("*"))
    for response in (
        _upload(sim, "../escape.png", data),
        _upload(sim, "ok.png", data, subfolder="../.."),
        _upload(sim, "ok.png", data, type="models"),
        sim.http.post("/upload/image", data={"type": "input"}),
        sim.http.post("/upload/image", content=b"not a form"),
    ):
        assert response.status_code == 400
        assert response.content == b""
    assert sorted(p.name for p in sim.input_dir.rglob("*")) == before
    assert not (sim.input_dir.parent / "escape.png").exists()


def test_load_image_then_invert_reflects_the_uploaded_pixels(sim: SimServer) -> None:
    _upload(sim, "drawing.png", _png(12, 9, (200, 100, 0)))
    middle = {"class_type": "ImageInvert", "inputs": {}}
    output = _run_and_open(sim, _image_input_workflow("drawing.png", "inv/img", middle))
    assert output.size == (12, 9)
    assert output.convert("RGB").getpixel((5, 5)) == (55, 155, 255)


def test_load_image_applies_exif_orientation(sim: SimServer) -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.new("RGB", (20, 10), (0, 0, 0)).save(buffer, format="PNG", exif=exif)
    _upload(sim, "turned.png", buffer.getvalue())
    middle = {"class_type": "ImageInvert", "inputs": {}}
    assert _run_and_open(sim, _image_input_workflow("turned.png", "t/img", middle)).size == (10, 20)


def test_image_scale_keeps_the_aspect_for_a_zero_side_and_crops_center(sim: SimServer) -> None:
    _upload(sim, "wide.png", _png(40, 20, (9, 9, 9)))
    keep = {
        "class_type": "ImageScale",
        "inputs": {"upscale_method": "bilinear", "width": 0, "height": 10, "crop": "disabled"},
    }
    assert _run_and_open(sim, _image_input_workflow("wide.png", "s/a", keep)).size == (20, 10)
    crop = {
        "class_type": "ImageScale",
        "inputs": {"upscale_method": "lanczos", "width": 16, "height": 16, "crop": "center"},
    }
    assert _run_and_open(sim, _image_input_workflow("wide.png", "s/b", crop)).size == (16, 16)


def test_a_graph_naming_a_file_not_in_input_is_refused(sim: SimServer) -> None:
    middle = {"class_type": "ImageInvert", "inputs": {}}
    response = sim.submit(_image_input_workflow("never-uploaded.png", "n/img", middle))
    assert response.status_code == 400
    errors = response.json()["node_errors"]["1"]["errors"]
    assert errors[0]["type"] == "value_not_in_list"
