"""``make dev`` runs ``python -m kiln_devstack``: it starts everything and SIGTERM stops it all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from kiln_devstack.processes import free_port
from support.kiln_polling import eventually

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
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiln_devstack"], env=env, stdout=log, stderr=subprocess.STDOUT
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
