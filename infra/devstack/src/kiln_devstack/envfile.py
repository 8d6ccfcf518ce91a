"""``kiln.env``: the one file where a school names its real backends, the host and the researcher
token, once. ``make dev`` reads it when it exists; the real environment wins over it, so
``KILN_GATEWAY_HOST=0.0.0.0 make dev`` still works with a kiln.env in place.

Only the settings listed in ``KNOWN_SETTINGS`` are accepted: a misspelt name would otherwise be
ignored by every service and look as if it had been applied.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from pathlib import Path

KNOWN_SETTINGS = {
    "KILN_GATEWAY_HOST": "address the gateway listens on (0.0.0.0: every address of this machine)",
    "KILN_GATEWAY_PORT": "the gateway's port",
    "KILN_GATEWAY_PUBLIC_URL": "the address tablets use, in join links and QR codes",
    "KILN_COMFYUI_URLS": "comma-separated real ComfyUI servers (unset: the simulator)",
    "KILN_LLM_URL": "an OpenAI-compatible chat endpoint (Ollama, llama.cpp server)",
    "KILN_RESEARCHER_TOKEN": "the researcher/teacher token",
    "KILN_VAR_DIR": "where all state lives",
}
_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


class EnvFileError(ValueError):
    """A line of the file that cannot be applied; the message names the file and the line."""


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    # An unquoted value may carry a trailing comment after whitespace.
    return re.split(r"\s+#", value, maxsplit=1)[0].strip()


def parse_env_file(text: str, source: str = "kiln.env") -> dict[str, str]:
    """``NAME=value`` lines; blank lines and ``#`` comments are skipped, ``export `` and quotes
    are allowed. Unknown names, empty values and repeated names are errors."""
    settings: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source} line {number}"
        line = line.removeprefix("export ").lstrip()
        name, equals, value = line.partition("=")
        name = name.strip()
        if not equals or not _NAME.fullmatch(name):
            raise EnvFileError(f"{where}: expected NAME=value, got {raw.strip()!r}")
        if name not in KNOWN_SETTINGS:
            known = ", ".join(sorted(KNOWN_SETTINGS))
            raise EnvFileError(f"{where}: {name} is not a setting kiln.env knows (known: {known})")
        if name in settings:
            raise EnvFileError(f"{where}: {name} is set twice")
        value = _unquote(value.strip())
        if not value:
            raise EnvFileError(f"{where}: {name} has no value; comment the line out instead")
        settings[name] = value
    return settings


def load_env_file(path: Path, environ: MutableMapping[str, str]) -> dict[str, str]:
    """Apply the file's settings to ``environ`` where the environment does not set them already.
    Returns what was applied; a missing file applies nothing."""
    if not path.is_file():
        return {}
    settings = parse_env_file(path.read_text(encoding="utf-8"), str(path))
    applied = {name: value for name, value in settings.items() if name not in environ}
    environ.update(applied)
    return applied
