"""``python -m comfyui_sim --port 8188 --output-dir DIR``."""

from __future__ import annotations

import argparse
import os

import uvicorn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="comfyui_sim", description="Run the ComfyUI simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--output-dir", help="where Save nodes write (default: a temp dir)")
    parser.add_argument("--temp-dir", help="where Preview nodes write (default: a temp dir)")
    parser.add_argument("--input-dir", help="what /view?type=input serves (default: a temp dir)")
    parser.add_argument("--node-delay-seconds", type=float, help="how long every node takes")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    for option, env in (
        (args.output_dir, "COMFYUI_SIM_OUTPUT_DIR"),
        (args.temp_dir, "COMFYUI_SIM_TEMP_DIR"),
        (args.input_dir, "COMFYUI_SIM_INPUT_DIR"),
        (args.node_delay_seconds, "COMFYUI_SIM_NODE_DELAY_SECONDS"),
    ):
        if option is not None:
            os.environ[env] = str(option)
    uvicorn.run(
        "comfyui_sim.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    main()
