"""Workflow templates: a ComfyUI API-format graph plus its manifest. Pure domain code."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from kiln_contracts.workflows import GraphInput, WorkflowManifest, resolve_params

Graph = dict[str, Any]

# ComfyUI nodes that write files take ``filename_prefix``; a per-run prefix keeps every run's
# files in their own folder on the backend, so outputs are never matched by guessing.
PREFIX_INPUT = "filename_prefix"


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class WorkflowTemplate:
    manifest: WorkflowManifest
    graph: Graph

    @property
    def name(self) -> str:
        return self.manifest.name

    def save_nodes(self) -> list[str]:
        return [nid for nid, node in self.graph.items() if PREFIX_INPUT in node.get("inputs", {})]

    def check(self) -> None:
        """A manifest may only point at inputs the graph has."""
        targets: list[GraphInput] = [*self.manifest.prompt_targets, *self.manifest.seed_targets]
        for spec in self.manifest.params.values():
            targets.extend(spec.targets)
        for target in targets:
            node = self.graph.get(target.node)
            if node is None or target.input not in node.get("inputs", {}):
                raise TemplateError(
                    f"{self.name}: no input {target.input!r} on node {target.node!r}"
                )
        if not self.save_nodes():
            raise TemplateError(f"{self.name}: the graph has no node with {PREFIX_INPUT}")

    def build(self, run_id: str, params: dict[str, Any], input_text: str, seed: int) -> Graph:
        """The exact graph to send for one run: parameters, prompt text, seed, per-run prefix."""
        graph = copy.deepcopy(self.graph)
        for name, spec in self.manifest.params.items():
            if name in params:
                for target in spec.targets:
                    graph[target.node]["inputs"][target.input] = params[name]
        for target in self.manifest.prompt_targets:
            graph[target.node]["inputs"][target.input] = input_text
        for target in self.manifest.seed_targets:
            graph[target.node]["inputs"][target.input] = seed
        for node_id in self.save_nodes():
            graph[node_id]["inputs"][PREFIX_INPUT] = run_prefix(run_id, node_id)
        return graph

    def default_graph(self) -> Graph:
        """The graph a run with every parameter at its default sends (the files it names)."""
        return self.build("default", resolve_params(self.manifest, {}), "", 0)


def run_prefix(run_id: str, node_id: str) -> str:
    """``kiln/{run_id}/{node_id}``: ComfyUI writes ``kiln/{run_id}/{node_id}_00001_.png``."""
    return f"kiln/{run_id}/{node_id}"


def builtin_workflows_dir() -> Path:
    return Path(str(files("kiln_pipeline") / "workflows"))


def load_templates(*directories: Path) -> dict[str, WorkflowTemplate]:
    """Every ``*.manifest.json`` with its ``*.json`` graph beside it, from the given directories
    (the built-in one when none is given); fails on the first bad one or a repeated name."""
    manifest_paths = [
        path
        for base in directories or (builtin_workflows_dir(),)
        for path in sorted(base.glob("*.manifest.json"))
    ]
    templates: dict[str, WorkflowTemplate] = {}
    for manifest_path in manifest_paths:
        manifest = WorkflowManifest.model_validate_json(manifest_path.read_bytes())
        graph_path = manifest_path.with_name(manifest_path.name.replace(".manifest.json", ".json"))
        graph = json.loads(graph_path.read_bytes())
        template = WorkflowTemplate(manifest, graph)
        template.check()
        if manifest.name in templates:
            raise TemplateError(f"two templates named {manifest.name!r}")
        templates[manifest.name] = template
    return templates
