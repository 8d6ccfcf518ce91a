"""Workflow manifests: what a template accepts. Pipeline-service owns the templates; the gateway
validates requests against the manifests before anything is queued."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class MediaKind(StrEnum):
    IMAGE = "image"
    ANIMATION = "animation"
    AUDIO = "audio"
    VIDEO = "video"


class GraphInput(BaseModel):
    """A node input inside the ComfyUI graph that a parameter writes to."""

    model_config = ConfigDict(frozen=True)

    node: str
    input: str


class ParamSpec(BaseModel):
    type: Literal["int", "float", "string", "bool"]
    default: JsonValue = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    choices: list[JsonValue] | None = None
    description: str = ""
    targets: list[GraphInput] = Field(default_factory=list)


class WorkflowManifest(BaseModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    title: dict[str, str] = Field(description="Title per language: en, de.")
    kind: MediaKind
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    prompt_targets: list[GraphInput] = Field(
        default_factory=list, description="Graph inputs that receive the run's input text."
    )
    seed_targets: list[GraphInput] = Field(
        default_factory=list, description="Graph inputs that receive the run's seed."
    )
    deadline_seconds: float = Field(default=600, gt=0)


class WorkflowSummary(BaseModel):
    """What clients see of a workflow at ``GET /api/workflows``."""

    name: str
    title: dict[str, str]
    kind: MediaKind
    params: dict[str, ParamSpec]


class InvalidParamsError(ValueError):
    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


def _check_one(name: str, spec: ParamSpec, value: JsonValue) -> str | None:
    kinds: dict[str, tuple[type, ...]] = {
        "int": (int,),
        "float": (int, float),
        "string": (str,),
        "bool": (bool,),
    }
    # bool is an int in Python; a JSON true is never a valid number here.
    if isinstance(value, bool) and spec.type != "bool":
        return f"expected {spec.type}, got a boolean"
    if not isinstance(value, kinds[spec.type]):
        return f"expected {spec.type}"
    if spec.choices is not None and value not in spec.choices:
        return f"must be one of {spec.choices}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if spec.minimum is not None and value < spec.minimum:
            return f"must be ≥ {spec.minimum}"
        if spec.maximum is not None and value > spec.maximum:
            return f"must be ≤ {spec.maximum}"
    if isinstance(value, str) and spec.max_length is not None and len(value) > spec.max_length:
        return f"longer than {spec.max_length} characters"
    return None


def resolve_params(
    manifest: WorkflowManifest, params: dict[str, JsonValue]
) -> dict[str, JsonValue]:
    """Apply defaults and check every parameter against the manifest.

    ``seed`` is accepted for every workflow (an int ≥ 0): a given seed makes a run reproducible.
    """
    problems: dict[str, str] = {}
    resolved: dict[str, JsonValue] = {}
    for name, value in params.items():
        if name == "seed":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
                problems[name] = "expected an integer between 0 and 2^63-1"
            else:
                resolved[name] = value
            continue
        spec = manifest.params.get(name)
        if spec is None:
            problems[name] = "unknown parameter"
            continue
        problem = _check_one(name, spec, value)
        if problem:
            problems[name] = problem
        else:
            resolved[name] = value
    if problems:
        raise InvalidParamsError(problems)
    for name, spec in manifest.params.items():
        resolved.setdefault(name, spec.default)
    return resolved
