"""Prompt validation, cache signatures and execution order: pure functions over the graph.

The validation follows ComfyUI's ``execution.validate_prompt`` / ``validate_inputs`` closely,
down to its error shapes and quirks (a link is ``[node_id, output_index]`` and ``node_id`` must
be the string key of a node; a bad link surfaces as ``exception_during_validation`` on the
output node that reached it).
"""

from __future__ import annotations

import hashlib
import json
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from comfyui_sim.nodes import NO_MODELS, Models, NodeDef

Registry = Mapping[str, NodeDef]
Prompt = dict[str, Any]

# Exceptions ComfyUI's validation would catch from malformed graphs (it catches Exception).
GRAPH_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError, RecursionError)


@dataclass
class Validation:
    ok: bool
    error: dict[str, Any] | None
    outputs: list[str]
    node_errors: dict[str, Any] = field(default_factory=dict)


def full_type_name(kind: type[BaseException]) -> str:
    module = kind.__module__
    if module == "builtins":
        return kind.__qualname__
    return f"{module}.{kind.__qualname__}"


def is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int | float)
        and not isinstance(value[1], bool)
    )


def node_inputs(node: Any) -> dict[str, Any]:
    inputs = node.get("inputs", {}) if isinstance(node, dict) else {}
    return inputs if isinstance(inputs, dict) else {}


def _type_matches(received: Any, expected: Any) -> bool:
    if received == expected:
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    if "*" in (received, expected):
        return True
    received_set = {t.strip() for t in received.split(",")}
    expected_set = {t.strip() for t in expected.split(",")}
    return bool(received_set & expected_set)


def _convert(input_type: Any, value: Any) -> Any:
    if input_type == "INT":
        return int(value)
    if input_type == "FLOAT":
        return float(value)
    if input_type == "STRING":
        return str(value)
    if input_type == "BOOLEAN":
        return bool(value)
    return value


def _sort_key(node_id: str) -> tuple[int, int, str]:
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


class _Validator:
    def __init__(self, prompt: Prompt, registry: Registry, models: Models) -> None:
        self.prompt = prompt
        self.registry = registry
        self.models = models
        self.validated: dict[str, tuple[bool, list[dict[str, Any]], str]] = {}
        self.in_progress: set[str] = set()

    def validate(self, unique_id: str) -> tuple[bool, list[dict[str, Any]], str]:
        if unique_id in self.validated:
            return self.validated[unique_id]
        if unique_id in self.in_progress:
            raise ValueError(f"Dependency cycle detected at node {unique_id}")
        self.in_progress.add(unique_id)
        try:
            return self._validate(unique_id)
        finally:
            self.in_progress.discard(unique_id)

    def _validate(self, unique_id: str) -> tuple[bool, list[dict[str, Any]], str]:
        node = self.prompt[unique_id]
        inputs = node_inputs(node)
        node_def = self.registry[node["class_type"]]
        errors: list[dict[str, Any]] = []
        valid = True
        names = list(node_def.required) + list(node_def.optional)
        for name in names:
            info = node_def.input_info(name, self.models)
            if info is None:  # pragma: no cover - names come from the definition
                continue
            input_type, category, extra_info = info
            input_config = node_def.public_input_config(name, self.models)
            if name not in inputs:
                if category == "required":
                    errors.append(
                        {
                            "type": "required_input_missing",
                            "message": "Required input is missing",
                            "details": name,
                            "extra_info": {"input_name": name},
                        }
                    )
                continue
            value = inputs[name]
            if isinstance(value, list):
                if len(value) != 2:
                    errors.append(
                        {
                            "type": "bad_linked_input",
                            "message": "Bad linked input, must be a length-2 list of "
                            "[node_id, slot_index]",
                            "details": name,
                            "extra_info": {
                                "input_name": name,
                                "input_config": input_config,
                                "received_value": value,
                            },
                        }
                    )
                    continue
                source_id = value[0]
                # As in ComfyUI, a missing node or slot raises here (caught by the caller).
                source_class = self.prompt[source_id]["class_type"]
                received_type = self.registry[source_class].return_types[value[1]]
                if not _type_matches(received_type, input_type):
                    errors.append(
                        {
                            "type": "return_type_mismatch",
                            "message": "Return type mismatch between linked nodes",
                            "details": f"{name}, received_type({received_type}) "
                            f"mismatch input_type({input_type})",
                            "extra_info": {
                                "input_name": name,
                                "input_config": input_config,
                                "received_type": received_type,
                                "linked_node": value,
                            },
                        }
                    )
                    continue
                try:
                    inner_valid, _, _ = self.validate(source_id)
                except GRAPH_ERRORS as ex:
                    valid = False
                    self.validated[source_id] = (
                        False,
                        [
                            {
                                "type": "exception_during_inner_validation",
                                "message": "Exception when validating inner node",
                                "details": str(ex),
                                "extra_info": {
                                    "input_name": name,
                                    "input_config": input_config,
                                    "exception_message": str(ex),
                                    "exception_type": full_type_name(type(ex)),
                                    "traceback": traceback.format_tb(ex.__traceback__),
                                    "linked_node": value,
                                },
                            }
                        ],
                        source_id,
                    )
                    continue
                if not inner_valid:
                    valid = False
                continue

            if isinstance(value, dict) and "__value__" in value:
                value = value["__value__"]
                inputs[name] = value
            try:
                value = _convert(input_type, value)
                inputs[name] = value
            except (TypeError, ValueError, OverflowError) as ex:
                errors.append(
                    {
                        "type": "invalid_input_type",
                        "message": f"Failed to convert an input value to a {input_type} value",
                        "details": f"{name}, {value}, {ex}",
                        "extra_info": {
                            "input_name": name,
                            "input_config": input_config,
                            "received_value": value,
                            "exception_message": str(ex),
                        },
                    }
                )
                continue
            if "min" in extra_info and value < extra_info["min"]:
                errors.append(
                    {
                        "type": "value_smaller_than_min",
                        "message": f"Value {value} smaller than min of {extra_info['min']}",
                        "details": name,
                        "extra_info": {
                            "input_name": name,
                            "input_config": input_config,
                            "received_value": value,
                        },
                    }
                )
                continue
            if "max" in extra_info and value > extra_info["max"]:
                errors.append(
                    {
                        "type": "value_bigger_than_max",
                        "message": f"Value {value} bigger than max of {extra_info['max']}",
                        "details": name,
                        "extra_info": {
                            "input_name": name,
                            "input_config": input_config,
                            "received_value": value,
                        },
                    }
                )
                continue
            if isinstance(input_type, list) and value not in input_type:
                errors.append(
                    {
                        "type": "value_not_in_list",
                        "message": "Value not in list",
                        "details": f"{name}: '{value}' not in {input_type}",
                        "extra_info": {
                            "input_name": name,
                            "input_config": input_config,
                            "received_value": value,
                        },
                    }
                )
                continue

        previous = self.validated.get(unique_id)
        if previous is not None:  # a cycle came back here and recorded why
            errors = previous[1] + errors
        result = (False, errors, unique_id) if errors or not valid else (True, [], unique_id)
        self.validated[unique_id] = result
        return result


def validate_prompt(prompt: Any, registry: Registry, models: Models = NO_MODELS) -> Validation:
    """Validate a graph as ComfyUI does; coerces literal inputs in place (INT, FLOAT, ...).

    Like ComfyUI, which iterates over whatever ``prompt`` is: an empty list (or string) has no
    nodes, hence ``prompt_no_outputs``; any other non-object crashes it (TypeError, which the
    route answers as ComfyUI's plain-text 500).
    """
    if isinstance(prompt, list | str) and not prompt:
        prompt = {}
    if not isinstance(prompt, dict):
        raise TypeError(f"ComfyUI cannot iterate a prompt of type {type(prompt).__name__}")
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return Validation(
                ok=False,
                error={
                    "type": "invalid_prompt",
                    "message": "Cannot execute because a node is missing the class_type property.",
                    "details": f"Node ID '#{node_id}'",
                    "extra_info": {},
                },
                outputs=[],
            )
        class_type = node["class_type"]
        node_def = registry.get(class_type) if isinstance(class_type, str) else None
        if node_def is None:
            return Validation(
                ok=False,
                error={
                    "type": "invalid_prompt",
                    "message": f"Cannot execute because node {class_type} does not exist.",
                    "details": f"Node ID '#{node_id}'",
                    "extra_info": {},
                },
                outputs=[],
            )
        if node_def.output_node:
            outputs.append(node_id)
    if not outputs:
        return Validation(
            ok=False,
            error={
                "type": "prompt_no_outputs",
                "message": "Prompt has no outputs",
                "details": "",
                "extra_info": {},
            },
            outputs=[],
        )

    validator = _Validator(prompt, registry, models)
    good_outputs: list[str] = []
    failures: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, Any] = {}
    for output_id in sorted(outputs, key=_sort_key):
        try:
            valid, reasons, _ = validator.validate(output_id)
        except GRAPH_ERRORS as ex:
            valid = False
            reasons = [
                {
                    "type": "exception_during_validation",
                    "message": "Exception when validating node",
                    "details": str(ex),
                    "extra_info": {
                        "exception_type": full_type_name(type(ex)),
                        "traceback": traceback.format_tb(ex.__traceback__),
                    },
                }
            ]
            validator.validated[output_id] = (False, reasons, output_id)
        if valid:
            good_outputs.append(output_id)
            continue
        failures.append((output_id, reasons))
        for node_id, (node_valid, node_reasons, _) in validator.validated.items():
            if node_valid or not node_reasons:
                continue
            if node_id not in node_errors:
                node_errors[node_id] = {
                    "errors": node_reasons,
                    "dependent_outputs": [],
                    "class_type": prompt[node_id]["class_type"],
                }
            node_errors[node_id]["dependent_outputs"].append(output_id)

    if not good_outputs:
        details = "\n".join(
            f"{reason['message']}: {reason['details']}"
            for _, reasons in failures
            for reason in reasons
        )
        return Validation(
            ok=False,
            error={
                "type": "prompt_outputs_failed_validation",
                "message": "Prompt outputs failed validation",
                "details": details,
                "extra_info": {},
            },
            outputs=[],
            node_errors=node_errors,
        )
    return Validation(ok=True, error=None, outputs=good_outputs, node_errors=node_errors)


def node_signatures(prompt: Prompt) -> dict[str, str]:
    """A cache key per node: its class and inputs, with links replaced by their source's key.

    Like ComfyUI's input-signature cache, two nodes with the same upstream graph and literal
    inputs share a key whatever their ids are.
    """
    signatures: dict[str, str] = {}
    visiting: set[str] = set()

    def signature(node_id: str) -> str:
        if node_id in signatures:
            return signatures[node_id]
        node = prompt.get(node_id)
        if node_id in visiting or not isinstance(node, dict):
            return f"unresolved:{node_id}"
        visiting.add(node_id)
        parts: list[Any] = [node.get("class_type")]
        inputs = node_inputs(node)
        for name in sorted(inputs):
            value = inputs[name]
            if is_link(value):
                parts.append([name, "link", signature(value[0]), value[1]])
            else:
                parts.append([name, value])
        visiting.discard(node_id)
        digest = hashlib.sha256(
            json.dumps(parts, sort_keys=True, default=repr).encode()
        ).hexdigest()
        signatures[node_id] = digest
        return digest

    for node_id in prompt:
        signature(node_id)
    return signatures


def plan_execution(
    prompt: Prompt, outputs: list[str], is_cached: Callable[[str], bool]
) -> list[str]:
    """Nodes to run, dependencies first; cached upstream nodes are not run (output nodes are)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(node_id: str) -> None:
        if node_id in seen:
            return
        seen.add(node_id)
        for value in node_inputs(prompt[node_id]).values():
            if is_link(value) and value[0] in prompt and not is_cached(value[0]):
                visit(value[0])
        order.append(node_id)

    for output_id in outputs:
        visit(output_id)
    return order
