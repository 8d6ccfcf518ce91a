"""POST /prompt: accepted shapes, the 400 shapes of ComfyUI's validation, and the 500."""

from __future__ import annotations

from typing import Any

from sim_helpers import SimServer, image_workflow, new_id


def _error(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "node_errors"}
    assert set(body["error"]) == {"type", "message", "details", "extra_info"}
    return body


def test_accepts_a_prompt_and_honours_the_client_chosen_prompt_id(sim: SimServer) -> None:
    prompt_id = new_id()
    response = sim.submit(image_workflow(), client_id="c", prompt_id=prompt_id)
    assert response.status_code == 200
    body = response.json()
    assert body == {"prompt_id": prompt_id, "number": body["number"], "node_errors": {}}
    assert isinstance(body["number"], int)
    assert sim.wait_history(prompt_id)["prompt"][1] == prompt_id


def test_generates_a_prompt_id_when_none_is_given_and_numbers_increase(sim: SimServer) -> None:
    first = sim.submit(image_workflow(seed=1)).json()
    second = sim.submit(image_workflow(seed=2)).json()
    assert len(first["prompt_id"]) == 36
    assert first["prompt_id"] != second["prompt_id"]
    assert second["number"] == first["number"] + 1


def test_no_prompt(sim: SimServer) -> None:
    body = _error(sim.http.post("/prompt", json={"client_id": "x"}))
    assert body["error"]["type"] == "no_prompt"
    assert body["error"]["message"] == "No prompt provided"
    assert body["node_errors"] == {}


def test_non_json_body_is_a_plain_text_500(sim: SimServer) -> None:
    response = sim.http.post(
        "/prompt", content=b"this is not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/plain")
    assert "500" in response.text


def test_unknown_node_type_is_invalid_prompt(sim: SimServer) -> None:
    prompt = image_workflow()
    prompt["9"] = {"class_type": "NoSuchNode", "inputs": {}}
    body = _error(sim.submit(prompt))
    assert body["error"]["type"] == "invalid_prompt"
    assert body["error"]["message"] == "Cannot execute because node NoSuchNode does not exist."
    assert body["error"]["details"] == "Node ID '#9'"


def test_missing_class_type_is_invalid_prompt(sim: SimServer) -> None:
    body = _error(sim.submit({"1": {"inputs": {}}}))
    assert body["error"]["type"] == "invalid_prompt"
    assert "class_type" in body["error"]["message"]


def test_prompt_without_output_nodes(sim: SimServer) -> None:
    prompt = image_workflow()
    del prompt["3"]
    body = _error(sim.submit(prompt))
    assert body["error"] == {
        "type": "prompt_no_outputs",
        "message": "Prompt has no outputs",
        "details": "",
        "extra_info": {},
    }


def test_required_input_missing(sim: SimServer) -> None:
    prompt = image_workflow()
    del prompt["3"]["inputs"]["filename_prefix"]
    body = _error(sim.submit(prompt))
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["error"]["message"] == "Prompt outputs failed validation"
    node = body["node_errors"]["3"]
    assert node["class_type"] == "SaveImage"
    assert node["dependent_outputs"] == ["3"]
    [error] = node["errors"]
    assert error == {
        "type": "required_input_missing",
        "message": "Required input is missing",
        "details": "filename_prefix",
        "extra_info": {"input_name": "filename_prefix"},
    }


def test_values_out_of_range_fail_on_the_node_that_has_them(sim: SimServer) -> None:
    prompt = image_workflow()
    prompt["1"]["inputs"]["width"] = 0
    prompt["2"]["inputs"]["strength"] = 3.5
    body = _error(sim.submit(prompt))
    errors = body["node_errors"]
    assert set(errors) == {"1", "2"}
    [too_small] = errors["1"]["errors"]
    assert too_small["type"] == "value_smaller_than_min"
    assert too_small["message"] == "Value 0 smaller than min of 1"
    assert too_small["extra_info"]["input_name"] == "width"
    assert too_small["extra_info"]["received_value"] == 0
    assert too_small["extra_info"]["input_config"][0] == "INT"
    [too_big] = errors["2"]["errors"]
    assert too_big["type"] == "value_bigger_than_max"
    assert too_big["message"] == "Value 3.5 bigger than max of 1.0"
    assert errors["1"]["dependent_outputs"] == ["3"]


def test_invalid_input_type_and_value_not_in_list(sim: SimServer) -> None:
    prompt = image_workflow()
    prompt["2"]["inputs"]["seed"] = "not a number"
    body = _error(sim.submit(prompt))
    [error] = body["node_errors"]["2"]["errors"]
    assert error["type"] == "invalid_input_type"
    assert error["message"] == "Failed to convert an input value to a INT value"

    prompt = image_workflow()
    prompt["3"] = {
        "class_type": "SaveAnimatedWEBP",
        "inputs": {
            "images": ["2", 0],
            "filename_prefix": "x",
            "fps": 6,
            "lossless": True,
            "quality": 80,
            "method": "fastest-ever",
        },
    }
    body = _error(sim.submit(prompt))
    [error] = body["node_errors"]["3"]["errors"]
    assert error["type"] == "value_not_in_list"
    assert error["details"] == "method: 'fastest-ever' not in ['default', 'fastest', 'slowest']"


def test_link_to_a_missing_node_is_a_validation_error(sim: SimServer) -> None:
    prompt = image_workflow()
    prompt["3"]["inputs"]["images"] = ["42", 0]
    body = _error(sim.submit(prompt))
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    [error] = body["node_errors"]["3"]["errors"]
    assert error["type"] == "exception_during_validation"
    assert error["extra_info"]["exception_type"] == "KeyError"


def test_link_with_an_integer_node_id_is_refused_as_comfyui_does(sim: SimServer) -> None:
    prompt = image_workflow()
    prompt["3"]["inputs"]["images"] = [2, 0]
    body = _error(sim.submit(prompt))
    assert body["node_errors"]["3"]["errors"][0]["type"] == "exception_during_validation"


def test_wrong_link_type_and_bad_link(sim: SimServer) -> None:
    prompt = image_workflow()
    prompt["4"] = {"class_type": "EmptyAudio", "inputs": {"duration": 1, "sample_rate": 8000}}
    prompt["4"]["inputs"]["channels"] = 1
    prompt["3"]["inputs"]["images"] = ["4", 0]
    body = _error(sim.submit(prompt))
    [error] = body["node_errors"]["3"]["errors"]
    assert error["type"] == "return_type_mismatch"
    assert error["details"] == "images, received_type(AUDIO) mismatch input_type(IMAGE)"

    prompt = image_workflow()
    prompt["3"]["inputs"]["images"] = ["2", 0, 1]
    body = _error(sim.submit(prompt))
    assert body["node_errors"]["3"]["errors"][0]["type"] == "bad_linked_input"


def test_one_good_output_is_enough_and_the_bad_one_is_reported(sim: SimServer) -> None:
    prompt = image_workflow()
    prompt["4"] = {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}}
    response = sim.submit(prompt, prompt_id=new_id())
    assert response.status_code == 200
    body = response.json()
    assert body["node_errors"]["4"]["errors"][0]["type"] == "required_input_missing"
    entry = sim.wait_history(body["prompt_id"])
    assert entry["prompt"][4] == ["3"]
    assert set(entry["outputs"]) == {"3"}


def test_literal_values_are_coerced_as_comfyui_does(sim: SimServer) -> None:
    prompt = image_workflow()
    prompt["1"]["inputs"]["width"] = "40"
    prompt["2"]["inputs"]["strength"] = 1
    prompt_id = new_id()
    assert sim.submit(prompt, prompt_id=prompt_id).status_code == 200
    stored = sim.wait_history(prompt_id)["prompt"][2]
    assert stored["1"]["inputs"]["width"] == 40
    assert stored["2"]["inputs"]["strength"] == 1.0


def test_object_info_describes_every_node_with_real_input_names(sim: SimServer) -> None:
    info = sim.http.get("/object_info").json()
    for name in (
        "EmptyImage",
        "ImageAddNoise",
        "ImageInvert",
        "ImageBlur",
        "SaveImage",
        "PreviewImage",
        "SaveAnimatedWEBP",
        "EmptyAudio",
        "SaveAudio",
        "CreateVideo",
        "SaveVideo",
    ):
        node = info[name]
        assert node["name"] == name
        assert {"input", "output", "output_name", "display_name", "category", "output_node"} <= (
            set(node)
        )
    assert info["EmptyImage"]["input"]["required"]["width"] == [
        "INT",
        {"default": 512, "min": 1, "max": 16384, "step": 1},
    ]
    assert list(info["ImageAddNoise"]["input"]["required"]) == ["image", "seed", "strength"]
    assert list(info["SaveImage"]["input"]["required"]) == ["images", "filename_prefix"]
    assert info["SaveImage"]["output_node"] is True
    assert info["CreateVideo"]["input"]["optional"]["audio"][0] == "AUDIO"
    assert sim.http.get("/object_info/SaveVideo").json()["SaveVideo"]["output_node"] is True
    assert sim.http.get("/object_info/NoSuchNode").json() == {}


def test_system_stats_and_api_prefix(sim: SimServer) -> None:
    stats = sim.http.get("/system_stats").json()
    assert stats["system"]["comfyui_version"] == "0.3.64-sim"
    assert stats["system"]["embedded_python"] is False
    assert stats["system"]["ram_total"] > 0
    assert stats["devices"][0]["type"] == "cpu"
    assert sim.http.get("/api/system_stats").json()["system"]["comfyui_version"] == "0.3.64-sim"
    assert sim.http.get("/prompt").json() == {"exec_info": {"queue_remaining": 0}}


def test_a_dependency_cycle_is_a_validation_error(sim: SimServer) -> None:
    prompt = {
        "1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
    }
    body = _error(sim.submit(prompt))
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    [error] = body["node_errors"]["2"]["errors"]
    assert "cycle" in error["details"]
