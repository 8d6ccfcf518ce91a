"""Serving a 1 MiB PNG at 16 connections with wrk: media-service directly (several server
setups), through the gateway, and nginx serving the same file on the same machine.

    make bench-deps            # wrk and nginx from Debian
    uv run python bench/serve.py [--seconds 10] [--connections 16]

Prints requests/s, p50 and p99 latency and the ratio of each to nginx; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunRequest
from kiln_devstack.processes import ManagedProcess, free_port, http_ok, wait_until
from kiln_storage.local import RunStore
from PIL import Image


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float


def one_mib_png() -> bytes:
    """A real PNG of about 1 MiB (noise does not compress)."""
    side = 512
    while True:
        noise = Image.effect_noise((side, side), 100).convert("RGB")
        out = io.BytesIO()
        noise.save(out, format="PNG", compress_level=1)
        if out.tell() >= 1024 * 1024 or side > 4096:
            return out.getvalue()
        side += 64


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(name: str, url: str, seconds: int, connections: int) -> Result:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.MULTILINE))
    parsed = {k: re.fullmatch(r"([\d.]+)(\w+)", v) for k, v in latency.items()}
    p50 = _ms(*parsed["50"].groups())  # type: ignore[union-attr]
    p99 = _ms(*parsed["99"].groups())  # type: ignore[union-attr]
    if "Non-2xx" in out or "Socket errors" in out:
        print(f"  ({name}: {out.strip().splitlines()[-3:]})")
    return Result(name, rps, p50, p99)


def nginx_conf(var: Path, root: Path, port: int) -> Path:
    conf = var / "nginx.conf"
    conf.write_text(
        f"""
user root;
worker_processes 2;
daemon off;
pid {var}/nginx.pid;
error_log {var}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ image/png png; }}
    client_body_temp_path {var}/nginx-body;
    proxy_temp_path {var}/nginx-proxy;
    fastcgi_temp_path {var}/nginx-fastcgi;
    uwsgi_temp_path {var}/nginx-uwsgi;
    scgi_temp_path {var}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        etag on;
    }}
}}
"""
    )
    return conf


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: run `make bench-deps`")

    var = Path(tempfile.mkdtemp(prefix="kiln-bench-serve-"))
    logs = var / "logs"
    root = var / "storage"
    store = RunStore(root)
    store.ensure_storage_id()
    run_id = new_run_id()
    store.create_run(run_id, RunRequest(workflow="noise", input_text="bench"))
    data = one_mib_png()
    entity = store.add_bytes(run_id, data, "output_image", "png", "image/png", {})
    relpath = f"{store.run_dir(run_id).relative_to(root)}/{entity.filename}"
    print(
        f"file: {entity.filename}, {len(data)} bytes; wrk -t2 -c{args.connections} "
        f"-d{args.seconds}s\n"
    )

    processes: list[ManagedProcess] = []

    def start(name: str, argv: list[str], env: dict[str, str], ready: str) -> None:
        process = ManagedProcess(name, argv, logs / f"{name}.log", env=env)
        process.start()
        processes.append(process)
        wait_until(http_ok(ready), 60, name, process)

    def stop_last() -> None:
        processes.pop().stop()

    results: list[Result] = []
    nats_port = free_port()
    nats = ManagedProcess(
        "nats",
        [
            str(Path(sys.executable).parent / "nats-server"),
            "-a",
            "127.0.0.1",
            "-p",
            str(nats_port),
            "-m",
            str(free_port()),
            "-js",
            "-sd",
            str(var / "nats"),
        ],
        logs / "nats.log",
    )
    nats.start()
    base_env = {
        "KILN_STORAGE_ROOT": str(root),
        "KILN_NATS_URL": f"nats://127.0.0.1:{nats_port}",
        "KILN_LOG_LEVEL": "WARNING",
    }
    try:
        time.sleep(0.5)
        nginx_port = free_port()
        nginx = ManagedProcess(
            "nginx", ["nginx", "-c", str(nginx_conf(var, root, nginx_port))], logs / "nginx.log"
        )
        nginx.start()
        processes.append(nginx)
        nginx_url = f"http://127.0.0.1:{nginx_port}/{relpath}"
        wait_until(http_ok(nginx_url), 30, "nginx", nginx)
        assert httpx.get(nginx_url).content == data
        results.append(
            wrk("nginx (2 workers, sendfile)", nginx_url, args.seconds, args.connections)
        )
        stop_last()

        file_path = f"/runs/{run_id}/files/{entity.filename}"
        setups = [
            ("media: uvicorn, 1 worker", ["--workers", "1"]),
            ("media: uvicorn, 2 workers", ["--workers", "2"]),
        ]
        granian = [
            str(Path(sys.executable).parent / "granian"),
            *("--interface", "asgi", "--factory", "--no-access-log", "--log-level", "warning"),
        ]
        setups += [
            ("media: granian, 1 worker (pathsend)", ["--workers", "1"]),
            ("media: granian, 2 workers (pathsend)", ["--workers", "2"]),
        ]
        for name, extra in setups:
            port = free_port()
            if "granian" in name:
                argv = [*granian, "--port", str(port), *extra, "kiln_media.app:create_app"]
            else:
                argv = [
                    *(sys.executable, "-m", "uvicorn", "kiln_media.app:create_app", "--factory"),
                    *("--port", str(port), "--no-access-log", "--log-level", "warning", *extra),
                ]
            url = f"http://127.0.0.1:{port}"
            start("media", argv, {**base_env, "KILN_INSTANCE_ID": "media-bench"}, f"{url}/readyz")
            assert httpx.get(f"{url}{file_path}").content == data
            results.append(wrk(name, f"{url}{file_path}", args.seconds, args.connections))
            stop_last()

        # Through the gateway (one worker each, the default deployment).
        media_port, gateway_port = free_port(), free_port()
        media_url = f"http://127.0.0.1:{media_port}"
        start(
            "media",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "kiln_media.app:create_app",
                "--factory",
                "--port",
                str(media_port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            {**base_env, "KILN_INSTANCE_ID": "media-bench"},
            f"{media_url}/readyz",
        )
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        start(
            "gateway",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "kiln_gateway.app:create_app",
                "--factory",
                "--port",
                str(gateway_port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            {
                **base_env,
                "KILN_INSTANCE_ID": "gateway-bench",
                "KILN_MEDIA_URL": media_url,
                "KILN_PIPELINE_URL": "http://127.0.0.1:9",
                "KILN_EXPORT_URL": "http://127.0.0.1:9",
            },
            f"{gateway_url}/healthz",
        )
        through = f"{gateway_url}/api{file_path}"
        assert httpx.get(through).content == data
        results.append(
            wrk("gateway → media (1 worker each)", through, args.seconds, args.connections)
        )
    finally:
        while processes:
            stop_last()
        nats.stop()
        shutil.rmtree(var, ignore_errors=True)

    nginx_result = results[0]
    print(
        f"{'server':34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s / nginx':>14}"
        f" {'p99 / nginx':>12}"
    )
    for r in results:
        print(
            f"{r.name:34} {r.rps:8.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f}"
            f" {r.rps / nginx_result.rps:14.2f} {r.p99_ms / nginx_result.p99_ms:12.1f}"
        )


if __name__ == "__main__":
    main()
