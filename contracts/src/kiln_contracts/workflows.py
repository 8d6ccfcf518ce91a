"""Workflow manifests: what a template accepts. Pipeline-service owns the templates; the gateway
validates requests against the manifests before anything is queued."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from kiln_contracts.errors import ErrorCode, MappedError


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


class TextStage(BaseModel):
    """A text step run by an OpenAI-compatible chat endpoint before generation: the previous
    stage's output (the run's input for the first) is the user message. Its result is stored as
    an entity of type ``name`` (``02_translation.txt``)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,30}$", description="Entity type, e.g. translation."
    )
    system_prompt: str = Field(min_length=1)
    model: str = "default"

    @field_validator("name")
    @classmethod
    def _not_a_reserved_type(cls, name: str) -> str:
        # Entity types the run record already uses for other files.
        if name in ("input", "workflow") or name.startswith("output"):
            raise ValueError(f"{name!r} is an entity type kiln uses for other files")
        return name


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
    late_outputs: Literal["discard", "keep"] = Field(
        default="discard",
        description="When ComfyUI finishes a run after its cancel or deadline (it interrupts "
        "only between nodes): discard → the run ends cancelled (or failed timeout), outputs "
        "not kept; keep → the outputs are stored and the run completed, the late stop recorded.",
    )
    text_stages: list[TextStage] = Field(
        default_factory=list,
        description="Run in order before generation; prompt_targets get the last one's output.",
    )
    unavailable_reason: str | None = Field(
        default=None,
        description="Set by the pipeline when it cannot run this workflow (text stages without "
        "a chat endpoint; node classes or model files no backend has); the gateway refuses "
        "such runs.",
    )


class WorkflowSummary(BaseModel):
    """What clients see of a workflow at ``GET /api/workflows``."""

    name: str
    title: dict[str, str]
    kind: MediaKind
    params: dict[str, ParamSpec]
    text_stages: list[str] = Field(default_factory=list, description="Names, in order.")
    unavailable_reason: str | None = Field(
        default=None, description="Why runs of this workflow are refused right now, if they are."
    )

    @classmethod
    def of(cls, manifest: WorkflowManifest) -> WorkflowSummary:
        return cls(
            name=manifest.name,
            title=manifest.title,
            kind=manifest.kind,
            params=manifest.params,
            text_stages=[stage.name for stage in manifest.text_stages],
            unavailable_reason=manifest.unavailable_reason,
        )


class InvalidParamsError(MappedError, ValueError):
    code = ErrorCode.INVALID_PARAMS
    status_code = 422

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
    # Python's json accepts NaN and ±Infinity; they pass every bound check (NaN) and break
    # every JSON encoder downstream, so they are refused here, at the edge.
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
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
