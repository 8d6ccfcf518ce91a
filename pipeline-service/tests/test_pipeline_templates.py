from __future__ import annotations

import json
from pathlib import Path

import pytest
from kiln_contracts.workflows import resolve_params
from kiln_pipeline.templates import TemplateError, load_templates, run_prefix

RUN = "01900000-0000-7000-8000-000000000000"


def test_builtin_templates_load_and_are_consistent() -> None:
    templates = load_templates()
    assert {"noise", "sd15_text_to_image"} <= set(templates)
    for template in templates.values():
        template.check()
        assert template.manifest.title.keys() >= {"en", "de"}


def test_build_injects_params_prompt_seed_and_a_per_run_prefix() -> None:
    template = load_templates()["sd15_text_to_image"]
    params = resolve_params(template.manifest, {"width": 768, "steps": 4})
    graph = template.build(RUN, params, "a red kite", seed=1234)
    assert graph["5"]["inputs"]["width"] == 768
    assert graph["5"]["inputs"]["height"] == 512
    assert graph["3"]["inputs"]["steps"] == 4
    assert graph["3"]["inputs"]["seed"] == 1234
    assert graph["6"]["inputs"]["text"] == "a red kite"
    assert graph["9"]["inputs"]["filename_prefix"] == f"kiln/{RUN}/9"
    # the template itself is untouched
    assert template.graph["3"]["inputs"]["seed"] == 0
    assert template.graph["9"]["inputs"]["filename_prefix"] == "kiln"


def test_noise_graph_is_exactly_the_weight_free_chain() -> None:
    template = load_templates()["noise"]
    graph = template.build(RUN, resolve_params(template.manifest, {}), "ignored", seed=7)
    assert [graph[n]["class_type"] for n in sorted(graph)] == [
        "EmptyImage",
        "ImageAddNoise",
        "SaveImage",
    ]
    assert graph["2"]["inputs"]["seed"] == 7
    assert graph["3"]["inputs"]["filename_prefix"] == run_prefix(RUN, "3")


def _write(tmp: Path, name: str, graph: dict[str, object], manifest: dict[str, object]) -> None:
    (tmp / f"{name}.json").write_text(json.dumps(graph))
    (tmp / f"{name}.manifest.json").write_text(json.dumps(manifest))


def test_a_manifest_pointing_at_a_missing_input_is_refused(tmp_path: Path) -> None:
    graph = {
        "1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["2", 0]}}
    }
    manifest = {
        "name": "bad",
        "title": {"en": "Bad", "de": "Schlecht"},
        "kind": "image",
        "seed_targets": [{"node": "1", "input": "seed"}],
    }
    _write(tmp_path, "bad", graph, manifest)
    with pytest.raises(TemplateError, match="no input 'seed'"):
        load_templates(tmp_path)


def test_a_graph_that_saves_nothing_is_refused(tmp_path: Path) -> None:
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}}
    _write(tmp_path, "nosave", graph, {"name": "nosave", "title": {"en": "x"}, "kind": "image"})
    with pytest.raises(TemplateError, match="filename_prefix"):
        load_templates(tmp_path)
