"""Protocol details where the simulator once differed from a real ComfyUI 0.3.64, one test each:
what a client could come to depend on must be what the real server does."""

from __future__ import annotations

from typing import Any

from sim_helpers import (
    Message,
    SimServer,
    drain,
    image_workflow,
    is_done,
    new_id,
    poll,
    receive,
    receive_until,
)

CHECKPOINT = "v1-5-pruned-emaonly.safetensors"


def sd15_workflow(checkpoint: str = CHECKPOINT, prefix: str = "sd/img") -> dict[str, Any]:
    """kiln's sd15_text_to_image graph, small."""
    return {
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 7,
                "steps": 4,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 64, "height": 48, "batch_size": 1},
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a kite", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["8", 0]}},
    }


def _run(sim: SimServer, prompt: dict[str, Any]) -> tuple[str, list[Message]]:
    prompt_id = new_id()
    with sim.websocket("c") as ws:
        receive(ws)
        response = sim.submit(prompt, client_id="c", prompt_id=prompt_id)
        assert response.status_code == 200, response.text
        return prompt_id, receive_until(ws, is_done(prompt_id))


def test_progress_state_announces_each_node_before_executing(sim: SimServer) -> None:
    _, messages = _run(sim, image_workflow())
    for node in ("1", "2", "3"):
        executing = next(
            i
            for i, m in enumerate(messages)
            if m["type"] == "executing" and m["data"]["node"] == node
        )
        before = messages[executing - 1]
        assert before["type"] == "progress_state", [m["type"] for m in messages]
        assert before["data"]["nodes"][node]["state"] == "running"


def test_progress_values_are_floats(sim: SimServer) -> None:
    sim.faults(node_delay_seconds=0.1)
    _, messages = _run(sim, image_workflow())
    progress = [m["data"] for m in messages if m["type"] == "progress"]
    assert progress
    assert all(isinstance(p["value"], float) and isinstance(p["max"], float) for p in progress)
    states = [
        node
        for m in messages
        if m["type"] == "progress_state"
        for node in m["data"]["nodes"].values()
    ]
    assert all(isinstance(s["value"], float) and isinstance(s["max"], float) for s in states)


def test_when_the_older_of_two_sockets_with_one_client_id_closes_the_newer_gets_nothing(
    sim: SimServer,
) -> None:
    # ComfyUI's handler pops the client id when a socket closes, whichever socket holds it.
    prompt_id = new_id()
    with sim.websocket("twice") as older:
        receive(older)
        with sim.websocket("twice") as newer:
            receive(newer)
            older.close()
            poll(
                lambda: "twice" not in sim.http.get("/sim/state").json()["websocket_clients"],
                what="the id gone with the older socket",
            )
            sim.submit(image_workflow(), client_id="twice", prompt_id=prompt_id)
            sim.wait_history(prompt_id)
            assert [m for m in drain(newer) if m["data"].get("prompt_id") == prompt_id] == []


def test_queue_and_history_items_have_no_create_time(sim: SimServer) -> None:
    sim.faults(node_delay_seconds=0.5)
    running, pending = new_id(), new_id()
    sim.submit(image_workflow(seed=1), prompt_id=running, extra_data={"extra_pnginfo": {}})
    sim.submit(image_workflow(seed=2), prompt_id=pending)
    queue = poll(
        lambda: (q := sim.http.get("/queue").json())["queue_running"] and q["queue_pending"] and q,
        what="one running, one pending",
    )
    for item in queue["queue_running"] + queue["queue_pending"]:
        assert "create_time" not in item[3], item[3]
    history = sim.wait_history(running)
    assert "create_time" not in history["prompt"][3]


def test_json_answers_say_charset_utf_8(sim: SimServer) -> None:
    for path in ("/queue", "/prompt", "/history", "/system_stats", "/object_info/SaveImage"):
        assert sim.http.get(path).headers["content-type"] == "application/json; charset=utf-8"
    rejected = sim.submit({})
    assert rejected.status_code == 400
    assert rejected.headers["content-type"] == "application/json; charset=utf-8"


def test_head_on_view_answers_like_get_without_a_body(sim: SimServer) -> None:
    prompt_id, _ = _run(sim, image_workflow(prefix="head/img"))
    params = {"filename": "img_00001_.png", "subfolder": "head", "type": "output"}
    got = sim.http.get("/view", params=params)
    head = sim.http.head("/view", params=params)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"] == "image/png"
    assert head.headers["content-length"] == str(len(got.content))
    assert sim.http.head("/view", params={**params, "filename": "nope.png"}).status_code == 404
    assert sim.http.head(f"/history/{prompt_id}").status_code == 200


def test_an_empty_list_as_prompt_is_prompt_no_outputs(sim: SimServer) -> None:
    response = sim.http.post("/prompt", json={"prompt": []})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "prompt_no_outputs"
    # Anything else that is not an object crashes ComfyUI's validation: its plain-text 500.
    for prompt in (5, "x", [1], None):
        crashed = sim.http.post("/prompt", json={"prompt": prompt})
        assert crashed.status_code == 500, prompt
        assert crashed.headers["content-type"].startswith("text/plain")


def test_system_stats_names_the_versions(sim: SimServer) -> None:
    system = sim.http.get("/system_stats").json()["system"]
    for field in ("comfyui_version", "required_frontend_version", "installed_templates_version"):
        assert isinstance(system[field], str)
        assert system[field]


def test_object_info_shows_v3_combos_as_combo_and_v1_combos_as_lists(sim: SimServer) -> None:
    info = sim.http.get("/object_info").json()
    save_video = info["SaveVideo"]["input"]["required"]  # a V3 node (comfy_extras.nodes_video)
    assert save_video["format"][0] == "COMBO"
    assert save_video["format"][1]["options"] == ["auto", "mp4"]
    assert save_video["format"][1]["default"] == "auto"
    sampler = info["KSampler"]["input"]["required"]  # a V1 node (nodes.py)
    assert isinstance(sampler["sampler_name"][0], list)
    assert "euler" in sampler["sampler_name"][0]
    assert info["SaveVideo"] == sim.http.get("/object_info/SaveVideo").json()["SaveVideo"]


def test_prompt_numbers_continue_the_servers_own_count(sim: SimServer) -> None:
    # One counter for every POST /prompt: other clients' prompts and rejected ones count too;
    # a client-given number is used as is (a float) and does not count.
    first = sim.submit(image_workflow(seed=1), client_id="a").json()["number"]
    assert sim.submit({}).status_code == 400  # takes a number although rejected
    other = sim.submit(image_workflow(seed=2), client_id="b").json()["number"]
    given = sim.http.post("/prompt", json={"prompt": image_workflow(seed=3), "number": 50})
    after = sim.submit(image_workflow(seed=4), client_id="a").json()["number"]
    assert (first, other, given.json()["number"], after) == (0, 2, 50.0, 3)
    front = sim.http.post("/prompt", json={"prompt": image_workflow(seed=5), "front": True})
    assert front.json()["number"] == -4


def test_a_checkpoint_is_offered_only_while_installed(sim: SimServer) -> None:
    def offered() -> list[str]:
        info = sim.http.get("/object_info/CheckpointLoaderSimple").json()
        options: list[str] = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
        return options

    assert offered() == []
    missing = sim.submit(sd15_workflow())
    assert missing.status_code == 400
    [error] = missing.json()["node_errors"]["4"]["errors"]
    assert error["type"] == "value_not_in_list"
    assert error["extra_info"]["input_name"] == "ckpt_name"

    installed = sim.http.post("/sim/models", json={"checkpoints": [CHECKPOINT]})
    assert installed.json()["checkpoints"] == [CHECKPOINT]
    assert offered() == [CHECKPOINT]
    _, messages = _run(sim, sd15_workflow())
    assert "execution_success" in {m["type"] for m in messages}
    assert (sim.output_dir / "sd" / "img_00001_.png").is_file()

    sim.http.post("/sim/models", json={"checkpoints": []})
    assert offered() == []
    assert sim.http.post("/sim/models", json={"unknown": []}).status_code == 422


def test_a_sampler_stops_at_a_step_when_interrupted(sim: SimServer) -> None:
    # ComfyUI's progress hook checks the interrupt flag: a sampling node stops midway.
    sim.http.post("/sim/models", json={"checkpoints": [CHECKPOINT]})
    sim.faults(node_delay_seconds=1.0)
    prompt_id = new_id()
    with sim.websocket("c") as ws:
        receive(ws)
        sim.submit(sd15_workflow(), client_id="c", prompt_id=prompt_id)
        messages = receive_until(ws, lambda m: m["type"] == "progress" and m["data"]["node"] == "3")
        sim.http.post("/interrupt", json={"prompt_id": prompt_id})
        messages += receive_until(ws, is_done(prompt_id))
    interrupted = next(m["data"] for m in messages if m["type"] == "execution_interrupted")
    assert interrupted["node_id"] == "3"
    assert interrupted["node_type"] == "KSampler"
    sampler_steps = [m for m in messages if m["type"] == "progress" and m["data"]["node"] == "3"]
    assert len(sampler_steps) < sampler_steps[0]["data"]["max"]
