"""What a backend can run, from its /object_info: node classes and combo options (V1 and V3)."""

from __future__ import annotations

from typing import Any

from kiln_pipeline.capabilities import combo_options, node_classes, problems, unavailable_reason
from kiln_pipeline.templates import load_templates

CHECKPOINT = "v1-5-pruned-emaonly.safetensors"


def loader(files: list[str], v3: bool = False) -> dict[str, Any]:
    spec: list[Any] = ["COMBO", {"options": files}] if v3 else [files, {"tooltip": "t"}]
    return {"input": {"required": {"ckpt_name": spec}}}


def any_node() -> dict[str, Any]:
    return {"input": {"required": {}}}


def sd15_catalogue(files: list[str], v3: bool = False) -> dict[str, Any]:
    catalogue = {
        c: any_node()
        for c in ("KSampler", "EmptyLatentImage", "CLIPTextEncode", "VAEDecode", "SaveImage")
    }
    catalogue["CheckpointLoaderSimple"] = loader(files, v3)
    return catalogue


SD15 = load_templates()["sd15_text_to_image"].default_graph()


def test_combo_options_in_both_schemas() -> None:
    assert combo_options([["a", "b"], {}]) == ["a", "b"]
    assert combo_options(["COMBO", {"options": ["a"], "default": "a"}]) == ["a"]
    assert combo_options(["COMBO", {}]) == []
    assert combo_options(["INT", {"default": 1}]) is None
    assert combo_options(["IMAGE"]) is None


def test_a_missing_checkpoint_is_named_in_either_schema() -> None:
    for v3 in (False, True):
        assert problems(SD15, sd15_catalogue([], v3)) == [
            f"checkpoint {CHECKPOINT} is not installed"
        ]
        assert problems(SD15, sd15_catalogue(["other.safetensors", CHECKPOINT], v3)) == []


def test_missing_node_classes_are_named_once_each() -> None:
    catalogue = sd15_catalogue([CHECKPOINT])
    del catalogue["KSampler"], catalogue["CLIPTextEncode"]  # CLIPTextEncode is used twice
    assert problems(SD15, catalogue) == ["nodes KSampler, CLIPTextEncode are not installed"]
    assert problems({"1": {"class_type": "Nope", "inputs": {}}}, catalogue) == [
        "node Nope is not installed"
    ]


def test_other_combo_values_and_links() -> None:
    catalogue = {
        "KSampler": {"input": {"required": {"sampler_name": [["euler"], {}], "model": ["MODEL"]}}}
    }
    graph = {"3": {"class_type": "KSampler", "inputs": {"sampler_name": "heun", "model": ["4", 0]}}}
    assert problems(graph, catalogue) == ["sampler_name 'heun' of node 3 (KSampler) is not offered"]


def test_an_unread_catalogue_knows_of_no_problem() -> None:
    assert problems(SD15, None) == []


def test_the_reason_says_whether_every_backend_lacks_the_same() -> None:
    missing = [f"checkpoint {CHECKPOINT} is not installed"]
    assert unavailable_reason({"comfyui-0": missing, "comfyui-1": missing}) == (
        f"checkpoint {CHECKPOINT} is not installed on any backend"
    )
    assert unavailable_reason({"comfyui-0": missing, "comfyui-1": []}) is None
    assert unavailable_reason({"comfyui-0": missing, "comfyui-1": ["node X is not installed"]}) == (
        "no backend can run it (comfyui-0: "
        f"checkpoint {CHECKPOINT} is not installed; comfyui-1: node X is not installed)"
    )


def test_node_classes_of_the_builtin_workflows() -> None:
    classes = node_classes(t.graph for t in load_templates().values())
    assert {"CheckpointLoaderSimple", "KSampler", "SaveImage", "SaveVideo"} <= classes
