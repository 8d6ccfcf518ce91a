"""``make dev`` runs ``python -m kiln_devstack``: it starts everything and SIGTERM stops it all;
for a workshop it listens on the room's network, says where the tablets go, and reads kiln.env."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from kiln_devstack.processes import ManagedProcess, free_port, http_ok, wait_until
from kiln_gateway.auth import DEV_RESEARCHER_TOKEN
from support.kiln_polling import eventually
from support.qr_codes import decode_terminal, terminal_qr_lines

pytestmark = pytest.mark.integration


def _descendants(pid: int) -> set[int]:
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children |= {int(c) for c in (task / "children").read_text().split()}
        except FileNotFoundError:
            continue
    for child in list(children):
        children |= _descendants(child)
    return children


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_devstack_starts_everything_and_sigterm_leaves_no_orphans(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "KILN_VAR_DIR": str(tmp_path / "var"), "KILN_GATEWAY_PORT": str(port)}
    env.pop("KILN_COMFYUI_URLS", None)
    log = (tmp_path / "devstack.out").open("wb")
    # cwd: a developer's own ./kiln.env must not reach the test.
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiln_devstack"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(ready, 90, "the dev stack's gateway")
        output = eventually(
            lambda: (
                (tmp_path / "devstack.out").read_text()
                if "kiln is up" in (tmp_path / "devstack.out").read_text()
                else None
            ),
            30,
            "the start-up summary",
        )
        started = _descendants(proc.pid)
        assert len(started) >= 6, "nats, simulator and four services"
        assert f"http://127.0.0.1:{port}" in output
        assert str(tmp_path / "var" / "storage") in output
        assert (tmp_path / "var" / "storage" / "storage-id").is_file()
        assert (tmp_path / "var" / "nats").is_dir()
        assert (tmp_path / "var" / "logs" / "gateway.log").is_file()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert [pid for pid in started if _alive(pid)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "KILN_VAR_DIR": str(tmp_path / "var")}
    for name in (
        "KILN_COMFYUI_URLS",
        "KILN_LLM_URL",
        "KILN_GATEWAY_HOST",
        "KILN_GATEWAY_PORT",
        "KILN_GATEWAY_PUBLIC_URL",
        "KILN_RESEARCHER_TOKEN",
    ):
        env.pop(name, None)
    return env


def _listening(port: int) -> set[str]:
    return {
        c.laddr.ip
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


def _ipv4_addresses(*, up_and_physical: bool) -> set[str]:
    """This machine's non-loopback IPv4 addresses; with ``up_and_physical`` only those of
    interfaces that are up and not a container bridge (docker0 comes and goes as other work on
    the machine starts containers, so the test cannot pin it either way)."""
    stats = psutil.net_if_stats()
    return {
        a.address
        for name, addresses in psutil.net_if_addrs().items()
        if not up_and_physical
        or (stats[name].isup and not name.startswith(("docker", "br-", "veth")))
        for a in addresses
        if a.family == socket.AF_INET
        and not a.address.startswith("127.")
        and not a.address.startswith("169.254.")
    }


def _simulator(tmp_path: Path, name: str, app: str, ready: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", app, "--factory", "--port", str(port)]
    env = {"COMFYUI_SIM_OUTPUT_DIR": str(tmp_path / name)}
    process = ManagedProcess(name, argv, tmp_path / f"{name}.log", env=env)
    process.start()
    url = f"http://127.0.0.1:{port}"
    wait_until(http_ok(f"{url}{ready}"), 60, f"{name} ready", process)
    return process, url


def test_a_workshop_listens_on_every_address_and_says_where_the_tablets_go(
    tmp_path: Path,
) -> None:
    """kiln.env names the host and two real backends (here: our simulators as separate
    processes); the gateway alone listens on every address, the URLs and a QR code are printed."""
    comfy, comfy_url = _simulator(tmp_path, "comfy", "comfyui_sim.app:create_app", "/system_stats")
    chat, chat_url = _simulator(tmp_path, "chat", "llm_sim.app:create_app", "/health")
    port = free_port()
    env_file = tmp_path / "kiln.env"
    env_file.write_text(
        "# a school's profile\n"
        "KILN_GATEWAY_HOST=0.0.0.0\n"
        f"KILN_GATEWAY_PORT={port}\n"
        f"KILN_COMFYUI_URLS={comfy_url}\n"
        f"KILN_LLM_URL={chat_url}\n"
    )
    out = tmp_path / "devstack.out"
    log = out.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiln_devstack"],
        env=_clean_env(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,  # reads ./kiln.env
    )
    try:
        output = eventually(
            lambda: out.read_text() if "kiln is up" in out.read_text() else None,
            120,
            "the start-up summary",
        )
        assert "KILN_COMFYUI_URLS, KILN_GATEWAY_HOST, KILN_GATEWAY_PORT, KILN_LLM_URL" in output
        assert f"ComfyUI       : {comfy_url}  answers" in output
        assert f"chat endpoint : {chat_url}  answers (models: any)" in output
        assert "simulator" not in output.split("kiln is up")[0]

        # The gateway listens on every IPv4 address; every other service on loopback only.
        assert _listening(port) == {"0.0.0.0"}
        for name in ("media", "pipeline", "export"):
            [internal] = [line for line in output.splitlines() if line.startswith(f"  {name} ")]
            internal_port = int(internal.rsplit(":", 1)[1])
            assert _listening(internal_port) == {"127.0.0.1"}, name

        room = {f"http://{a}:{port}" for a in _ipv4_addresses(up_and_physical=True)}
        assert room, "this machine has no network address besides loopback to test with"
        tablet = output.split("Tablets in the room open:")[1].split("\n\n")[0].split()
        assert (
            room
            <= set(tablet)
            <= {f"http://{a}:{port}" for a in _ipv4_addresses(up_and_physical=False)}
        )
        assert tablet[0] in room, "the QR code names a room address, not a container bridge"
        for url in tablet:  # each one really reaches the gateway
            assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
            internal_url = f"http://{url.split('//')[1].split(':')[0]}:{internal_port}"
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{internal_url}/healthz", timeout=5)
        qr = terminal_qr_lines(output, f"(QR code of {tablet[0]})")
        assert decode_terminal(qr) == [tablet[0]]
        assert f"teacher board: {tablet[0]}/#/board" in output

        # Join links name the address the tablets use, even when asked on loopback.
        researcher = {"authorization": f"Bearer {DEV_RESEARCHER_TOKEN}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as gateway:
            session = gateway.post("/api/sessions", json={"title": "room"}, headers=researcher)
            board = gateway.get(
                f"/api/sessions/{session.json()['session_id']}/board", headers=researcher
            )
            assert board.json()["join_url"] == f"{tablet[0]}/#/join/{session.json()['code']}"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        comfy.stop()
        chat.stop()


def test_an_unreachable_comfyui_in_kiln_env_stops_start_up_naming_it(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # released: nothing listens there
    env_file = tmp_path / "school.env"
    env_file.write_text(f"KILN_COMFYUI_URLS={nobody}\n")
    done = subprocess.run(
        [sys.executable, "-m", "kiln_devstack", "--env-file", str(env_file)],
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert f"the ComfyUI at {nobody} (KILN_COMFYUI_URLS) does not answer" in done.stderr
    assert "does not fall back to the simulator" in done.stderr
    assert "kiln is up" not in done.stdout
    assert not (tmp_path / "var" / "logs").exists(), "nothing was started"


def test_a_misspelt_setting_in_kiln_env_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "kiln.env").write_text("KILN_GATEWAY_HOTS=0.0.0.0\n")
    done = subprocess.run(
        [sys.executable, "-m", "kiln_devstack"],
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "kiln.env line 1: KILN_GATEWAY_HOTS is not a setting kiln.env knows" in done.stderr
