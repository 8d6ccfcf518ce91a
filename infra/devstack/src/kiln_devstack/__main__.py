"""``python -m kiln_devstack``: the whole system in the foreground, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from kiln_devstack.processes import StartupError
from kiln_devstack.stack import Stack, StackConfig


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the whole kiln system locally.")
    parser.add_argument("--var-dir", default=os.environ.get("KILN_VAR_DIR", "./var"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("KILN_GATEWAY_PORT", "8080"))
    )
    args = parser.parse_args()

    urls = [u.strip() for u in os.environ.get("KILN_COMFYUI_URLS", "").split(",") if u.strip()]
    stack = Stack(
        StackConfig(var_dir=Path(args.var_dir), gateway_port=args.port, comfyui_urls=urls)
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
        print(f"kiln: could not start: {exc}", file=sys.stderr, flush=True)
        return 1
    print(
        "\n".join(
            [
                "",
                f"kiln is up.  Gateway: {stack.gateway_url}   (API under /api, e.g. {stack.gateway_url}/api/system)",
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
