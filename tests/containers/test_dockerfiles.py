"""The service Dockerfiles: each installs only its own workspace member (and the members it
depends on), runs as a non-root user and carries a healthcheck.

The workspace facts (member names, packages, dependencies) are read from the pyproject.toml
files, so a new workspace dependency that a Dockerfile does not copy fails here, not in a
build on someone else's machine.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SERVICE_DIRS = ["gateway", "pipeline-service", "media-service", "export-service"]
SERVICE_PORT = "8000"
SERVICE_UID = "10001"

Instructions = list[tuple[str, str]]


@dataclass(frozen=True)
class Member:
    directory: str  # relative to the repository root
    name: str  # distribution name, what `uv sync --package` takes
    module: str  # the import package under src/
    dependencies: frozenset[str]  # distribution names, normalised


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"cannot read a name from requirement {requirement!r}"
    return _normalise(match.group(1))


def _load(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def _workspace(root: Path) -> dict[str, Member]:
    members: dict[str, Member] = {}
    for directory in _load(root / "pyproject.toml")["tool"]["uv"]["workspace"]["members"]:
        pyproject = _load(root / directory / "pyproject.toml")
        [package] = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
        name = _normalise(pyproject["project"]["name"])
        members[name] = Member(
            directory=directory,
            name=name,
            module=Path(package).name,
            dependencies=frozenset(
                _requirement_name(r) for r in pyproject["project"].get("dependencies", [])
            ),
        )
    return members


def _closure(workspace: dict[str, Member], name: str) -> set[str]:
    """``name`` and every workspace member it depends on, directly or not."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(d for d in workspace[current].dependencies if d in workspace)
    return seen


def _args(instructions: Instructions, keyword: str) -> list[str]:
    return [args for kw, args in instructions if kw == keyword]


def _copies(instructions: Instructions) -> list[list[str]]:
    """Source paths of each COPY from the build context (not --from another stage)."""
    sources: list[list[str]] = []
    for args in _args(instructions, "COPY"):
        words = shlex.split(args)
        if any(w.startswith("--from") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources.append(paths[:-1])
    return sources


def _exec_form(args: str) -> list[str]:
    words: object = json.loads(args)
    assert isinstance(words, list), f"not exec form: {args}"
    return [str(w) for w in words]


@pytest.fixture(scope="module")
def workspace(repo_root: Path) -> dict[str, Member]:
    return _workspace(repo_root)


@pytest.fixture(params=SERVICE_DIRS)
def service(request: pytest.FixtureRequest, workspace: dict[str, Member]) -> Member:
    [member] = [m for m in workspace.values() if m.directory == request.param]
    return member


@pytest.fixture
def dockerfile(service: Member, repo_root: Path) -> Path:
    path = repo_root / service.directory / "Dockerfile"
    assert path.is_file(), f"missing {path}"
    return path


def test_installs_only_its_own_member(
    service: Member,
    dockerfile: Path,
    dockerfile_instructions: Callable[[Path], Instructions],
) -> None:
    syncs = [
        shlex.split(args)
        for args in _args(dockerfile_instructions(dockerfile), "RUN")
        if "uv sync" in args
    ]
    assert syncs, "no `uv sync`"
    for words in syncs:
        command = words[words.index("uv") :]
        assert "--all-packages" not in command
        packages = [command[i + 1] for i, w in enumerate(command) if w == "--package"]
        assert packages == [service.name], f"uv sync installs {packages}, not {service.name}"
        for flag in ("--frozen", "--no-dev", "--no-editable"):
            assert flag in command, f"uv sync without {flag}"
    # The last sync installs the member itself.
    assert "--no-install-workspace" not in syncs[-1]


def test_copies_the_workspace_and_only_the_sources_it_needs(
    service: Member,
    workspace: dict[str, Member],
    dockerfile: Path,
    dockerfile_instructions: Callable[[Path], Instructions],
) -> None:
    copied = {
        source.rstrip("/")
        for sources in _copies(dockerfile_instructions(dockerfile))
        for source in sources
    }
    # uv reads the whole workspace from uv.lock and every member's manifest.
    manifests = {f"{m.directory}/pyproject.toml" for m in workspace.values()}
    assert {"pyproject.toml", "uv.lock"} | manifests <= copied

    sources = {c for c in copied if c.endswith("/src")}
    needed = {f"{workspace[name].directory}/src" for name in _closure(workspace, service.name)}
    assert sources == needed
    assert "." not in copied, "copying the whole context defeats the per-service image"


def test_runs_as_a_non_root_user(
    dockerfile: Path, dockerfile_final_stage: Callable[[Path], Instructions]
) -> None:
    users = _args(dockerfile_final_stage(dockerfile), "USER")
    assert users, "the image runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user == SERVICE_UID


def test_has_a_healthcheck_on_healthz(
    dockerfile: Path, dockerfile_final_stage: Callable[[Path], Instructions]
) -> None:
    [healthcheck] = _args(dockerfile_final_stage(dockerfile), "HEALTHCHECK")
    _, _, command = healthcheck.partition("CMD ")
    words = _exec_form(command)
    assert words[:2] == ["python", "-c"]
    assert "urllib" in words[2]
    assert f"127.0.0.1:{SERVICE_PORT}/healthz" in words[2]


def test_serves_the_app_factory_on_port_8000(
    service: Member, dockerfile: Path, dockerfile_final_stage: Callable[[Path], Instructions]
) -> None:
    final = dockerfile_final_stage(dockerfile)
    assert _args(final, "EXPOSE") == [SERVICE_PORT]
    [cmd] = _args(final, "CMD")
    assert _exec_form(cmd) == [
        "uvicorn",
        f"{service.module}.app:create_app",
        "--factory",
        "--host",
        "0.0.0.0",
        "--port",
        SERVICE_PORT,
    ]


def test_dockerignore_keeps_local_state_out_of_the_context(repo_root: Path) -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in (repo_root / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "var"} <= patterns
