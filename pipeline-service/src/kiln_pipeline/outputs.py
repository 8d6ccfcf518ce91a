"""Reading ComfyUI's history entry: which files a run produced, or why it failed. Pure."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from kiln_contracts.events import GeneratedOutput

_VIDEO_EXTS = {"mp4", "webm", "mov", "mkv"}


def collect_outputs(entry: dict[str, Any]) -> list[GeneratedOutput]:
    """Every saved file of every node and kind; previews (``type: temp``) are left out."""
    found: list[GeneratedOutput] = []
    outputs = entry.get("outputs") or {}
    for node_id, node_outputs in sorted(outputs.items(), key=lambda kv: str(kv[0])):
        if not isinstance(node_outputs, dict):
            continue
        animated = node_outputs.get("animated") or []
        for kind, items in node_outputs.items():
            if kind == "animated" or not isinstance(items, list):
                continue
            for index, item in enumerate(items):
                if not isinstance(item, dict) or "filename" not in item:
                    continue
                if item.get("type", "output") != "output":
                    continue
                effective = kind
                is_animated = index < len(animated) and bool(animated[index])
                if kind == "images" and is_animated:
                    ext = PurePosixPath(str(item["filename"])).suffix.lstrip(".").lower()
                    effective = "video" if ext in _VIDEO_EXTS else "animation"
                found.append(
                    GeneratedOutput(
                        node_id=str(node_id),
                        kind=effective,
                        filename=str(item["filename"]),
                        subfolder=str(item.get("subfolder", "")),
                        type="output",
                    )
                )
    return found


def failure_of(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The ``execution_error`` details if the prompt failed, else None."""
    status = entry.get("status") or {}
    if status.get("status_str") != "error":
        return None
    for message in status.get("messages") or []:
        if (
            isinstance(message, list)
            and len(message) == 2
            and message[0]
            in (
                "execution_error",
                "execution_interrupted",
            )
        ):
            details = message[1] if isinstance(message[1], dict) else {}
            return {"kind": message[0], **details}
    return {"kind": "error"}
