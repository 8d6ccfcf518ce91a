"""``python -m kiln_devstack``: the whole system in the foreground, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from kiln_devstack.backends import check_backends
from kiln_devstack.envfile import EnvFileError, load_env_file
from kiln_devstack.network import (
    HostError,
    is_loopback,
    parse_host,
    tablet_urls,
    terminal_qr,
)
from kiln_devstack.processes import StartupError
from kiln_devstack.stack import Stack, StackConfig


def _fail(message: str) -> int:
    print(f"kiln: could not start: {message}", file=sys.stderr, flush=True)
    return 1


def _split(value: str) -> list[str]:
    return [u.strip().rstrip("/") for u in value.split(",") if u.strip()]


def _room_lines(host: str, urls: list[str], public_url: str | None) -> list[str]:
    if is_loopback(host):
        return [
            "  Only this computer can open it. For a workshop, let the tablets in:",
            "  KILN_GATEWAY_HOST=0.0.0.0 make dev   (or set it in kiln.env)",
        ]
    shown = [public_url] if public_url else urls
    if not shown:
        return ["  Tablets: this machine has no network address besides loopback (no Wi-Fi?)"]
    lines = ["  Tablets in the room open:", *(f"    {url}" for url in shown)]
    lines += ["", terminal_qr(shown[0]).rstrip("\n"), f"  (QR code of {shown[0]})"]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the whole kiln system locally.")
    parser.add_argument(
        "--env-file",
        type=Path,
        default=Path("kiln.env"),
        help="settings for real backends (default: ./kiln.env, read when it exists)",
    )
    parser.add_argument("--var-dir", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--host", default=None, help="where the gateway listens (0.0.0.0: all)")
    args = parser.parse_args()

    try:
        applied = load_env_file(args.env_file, os.environ)
    except (EnvFileError, OSError) as exc:
        return _fail(str(exc))
    if applied:
        print(f"kiln: read {', '.join(sorted(applied))} from {args.env_file}", flush=True)
    try:
        host = parse_host(args.host or os.environ.get("KILN_GATEWAY_HOST", "127.0.0.1"))
        port = args.port or int(os.environ.get("KILN_GATEWAY_PORT", "8080"))
    except (HostError, ValueError) as exc:
        return _fail(str(exc))
    var_dir = Path(args.var_dir or os.environ.get("KILN_VAR_DIR", "./var"))
    comfyui_urls = _split(os.environ.get("KILN_COMFYUI_URLS", ""))
    llm_url = os.environ.get("KILN_LLM_URL", "").strip().rstrip("/") or None

    print("kiln: backends", flush=True)
    checks = check_backends(comfyui_urls, llm_url)
    if not comfyui_urls:
        print("  ComfyUI       : the built-in simulator (no KILN_COMFYUI_URLS)", flush=True)
    if not llm_url:
        print("  chat endpoint : none; workflows with text stages are unavailable", flush=True)
    for check in checks:
        print(check.line(), flush=True)
    problems = [check.problem() for check in checks if not check.answers]
    if problems:
        return _fail("\n  ".join(problems))

    urls = tablet_urls(host, port)
    public_url = os.environ.get("KILN_GATEWAY_PUBLIC_URL", "").strip().rstrip("/") or None
    # Join links and the board's QR code must name an address the tablets can reach, even when
    # the teacher opens the board on this machine as localhost.
    join_base = public_url or (urls[0] if urls else None)
    stack = Stack(
        StackConfig(
            var_dir=var_dir,
            gateway_port=port,
            gateway_host=host,
            comfyui_urls=comfyui_urls,
            extra_env={"KILN_GATEWAY_PUBLIC_URL": join_base} if join_base else {},
        )
    )
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"kiln: starting in {stack.var_dir} …", flush=True)
    try:
        stack.start()
    except (StartupError, FileNotFoundError) as exc:
        return _fail(str(exc))
    board = f"{join_base or stack.gateway_url}/#/board"
    print(
        "\n".join(
            [
                "",
                f"kiln is up.  Gateway: {stack.gateway_url}   (API under /api, e.g. {stack.gateway_url}/api/system)",
                f"  listening on : {host}:{port}   (every other service on 127.0.0.1)",
                *_room_lines(host, urls, public_url),
                f"  teacher board: {board}   (sign in with the researcher token)",
                f"  storage root : {stack.storage_root}",
                f"  logs         : {stack.logs_dir}/<service>.log",
                f"  NATS         : {stack.nats_url}  (store {stack.var_dir / 'nats'})",
                f"  ComfyUI      : {', '.join(stack.comfyui_urls)}",
                *(f"  {name:<13}: {stack.urls[name]}" for name in ("media", "pipeline", "export")),
                "",
                f"Try: curl -X POST {stack.gateway_url}/api/runs -H 'content-type: application/json' "
                '-d \'{"workflow":"noise","input_text":"a red kite"}\'',
                "Ctrl-C stops everything.",
            ]
        ),
        flush=True,
    )
    while not stop.wait(1):
        dead = [p.name for p in stack.processes.values() if not p.running]
        if dead:
            print(
                f"kiln: {', '.join(dead)} exited; stopping everything (see logs)", file=sys.stderr
            )
            stack.stop()
            return 1
    print("kiln: stopping …", flush=True)
    stack.stop()
    print("kiln: stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
