"""GET /view: serves what the nodes wrote, nothing else."""

from __future__ import annotations

import os

import pytest
from sim_helpers import SimServer, audio_workflow, image_workflow, new_id, webp_workflow


def _output(sim: SimServer, prompt: dict[str, object], node: str, key: str) -> dict[str, str]:
    prompt_id = new_id()
    assert sim.submit(prompt, prompt_id=prompt_id).status_code == 200
    entry = sim.wait_history(prompt_id)
    output: dict[str, str] = entry["outputs"][node][key][0]
    return output


@pytest.mark.parametrize(
    ("prompt", "node", "key", "content_type"),
    [
        (image_workflow(prefix="v/img"), "3", "images", "image/png"),
        (webp_workflow(prefix="v/anim"), "3", "images", "image/webp"),
        (audio_workflow(prefix="v/snd"), "2", "audio", "audio/flac"),
    ],
)
def test_serves_outputs_with_their_content_type(
    sim: SimServer, prompt: dict[str, object], node: str, key: str, content_type: str
) -> None:
    output = _output(sim, prompt, node, key)
    response = sim.http.get("/view", params=output)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    path = sim.output_dir / output["subfolder"] / output["filename"]
    assert response.content == path.read_bytes()
    assert sim.http.get("/api/view", params=output).content == response.content


def test_serves_temp_and_input_files(sim: SimServer) -> None:
    prompt = image_workflow()
    prompt["3"] = {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}
    preview = _output(sim, prompt, "3", "images")
    assert sim.http.get("/view", params=preview).status_code == 200
    (sim.input_dir / "upload.png").write_bytes(b"\x89PNG fake")
    response = sim.http.get("/view", params={"filename": "upload.png", "type": "input"})
    assert response.content == b"\x89PNG fake"
    annotated = sim.http.get("/view", params={"filename": "upload.png [input]"})
    assert annotated.content == b"\x89PNG fake"


def test_missing_file_is_404_with_an_empty_body(sim: SimServer) -> None:
    for params in (
        {"filename": "nothing_00001_.png", "subfolder": "", "type": "output"},
        {"filename": "nothing.png", "subfolder": "no/such/folder"},
        {},
    ):
        response = sim.http.get("/view", params=params)
        assert response.status_code == 404
        assert response.content == b""


def test_traversal_is_refused(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    secret = tmp_path_factory.mktemp("outside") / "secret.txt"
    secret.write_text("do not serve")
    relative = os.path.relpath(secret, sim.output_dir)
    attempts = [
        {"filename": relative},
        {"filename": str(secret)},
        {"filename": "../secret.txt"},
        {"filename": "secret.txt", "subfolder": os.path.relpath(secret.parent, sim.output_dir)},
        {"filename": "secret.txt", "subfolder": str(secret.parent)},
        {"filename": "x.png", "type": "models"},
    ]
    for params in attempts:
        response = sim.http.get("/view", params=params)
        assert response.status_code in {400, 403, 404}, params
        assert b"do not serve" not in response.content


def test_symlink_out_of_the_output_folder_is_not_followed(
    sim: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    secret = tmp_path_factory.mktemp("outside") / "secret.png"
    secret.write_text("do not serve")
    (sim.output_dir / "link.png").symlink_to(secret)
    response = sim.http.get("/view", params={"filename": "link.png"})
    assert response.status_code == 403
    assert b"do not serve" not in response.content
