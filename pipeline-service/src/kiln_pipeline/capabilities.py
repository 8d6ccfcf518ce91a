"""What a ComfyUI backend can run, from its ``/object_info``: pure domain code.

A graph can run on a backend when the backend has every node class the graph names and every
literal value the graph gives a combo input (a loader's checkpoint, LoRA or VAE file, a
sampler's name…) is among that input's options. ComfyUI itself refuses any other value
(``value_not_in_list``), so this is its own validation, done before anything is submitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# /object_info entries by node class, as a backend reported them.
NodeCatalogue = Mapping[str, Any]
Graph = Mapping[str, Any]

# Combo inputs that name a model file, and how to call that file in a reason.
MODEL_INPUTS = {
    "ckpt_name": "checkpoint",
    "lora_name": "LoRA",
    "vae_name": "VAE",
    "unet_name": "diffusion model",
    "clip_name": "text encoder",
    "clip_name1": "text encoder",
    "clip_name2": "text encoder",
    "control_net_name": "ControlNet",
    "model_name": "model",
}


def node_classes(graphs: Iterable[Graph]) -> frozenset[str]:
    """Every node class the graphs name (the classes whose /object_info kiln needs)."""
    return frozenset(
        str(node["class_type"])
        for graph in graphs
        for node in graph.values()
        if isinstance(node, Mapping) and isinstance(node.get("class_type"), str)
    )


def combo_options(spec: Any) -> list[Any] | None:
    """A combo input's options in either /object_info schema, or None if it is no combo.

    V1 nodes give ``[[option, ...], {...}]``; V3 nodes give ``["COMBO", {"options": [...]}]``.
    """
    if not isinstance(spec, list | tuple) or not spec:
        return None
    kind = spec[0]
    if isinstance(kind, list):
        return kind
    if kind == "COMBO":
        extra = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
        options = extra.get("options")
        return list(options) if isinstance(options, list) else []
    return None


def _input_spec(info: Any, name: str) -> Any:
    inputs = info.get("input") if isinstance(info, Mapping) else None
    if not isinstance(inputs, Mapping):
        return None
    for category in ("required", "optional"):
        section = inputs.get(category)
        if isinstance(section, Mapping) and name in section:
            return section[name]
    return None


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


def problems(graph: Graph, catalogue: NodeCatalogue | None) -> list[str]:
    """Why ``graph`` cannot run on a backend with this catalogue; [] when it can. An unknown
    catalogue (never read) has no known problems: ComfyUI's own validation decides then."""
    if catalogue is None:
        return []
    missing: list[str] = []
    found: list[str] = []
    for node_id, node in graph.items():
        if not isinstance(node, Mapping):
            continue
        class_type = str(node.get("class_type"))
        info = catalogue.get(class_type)
        if info is None:
            if class_type not in missing:
                missing.append(class_type)
            continue
        inputs = node.get("inputs")
        for name, value in inputs.items() if isinstance(inputs, Mapping) else ():
            if _is_link(value):
                continue
            options = combo_options(_input_spec(info, name))
            if options is None or value in options:
                continue
            kind = MODEL_INPUTS.get(name)
            if kind is not None:
                found.append(f"{kind} {value} is not installed")
            else:
                found.append(f"{name} {value!r} of node {node_id} ({class_type}) is not offered")
    if len(missing) == 1:
        found.insert(0, f"node {missing[0]} is not installed")
    elif missing:
        found.insert(0, f"nodes {', '.join(missing)} are not installed")
    return list(dict.fromkeys(found))


def unavailable_reason(by_backend: Mapping[str, list[str]]) -> str | None:
    """Why no backend can run a graph (``by_backend``: each backend's problems with it), or
    None when at least one can."""
    if not by_backend or any(not found for found in by_backend.values()):
        return None
    distinct = {tuple(found) for found in by_backend.values()}
    if len(distinct) == 1:
        [found] = distinct
        return "; ".join(f"{problem} on any backend" for problem in found)
    per_backend = "; ".join(f"{name}: {', '.join(found)}" for name, found in by_backend.items())
    return f"no backend can run it ({per_backend})"
