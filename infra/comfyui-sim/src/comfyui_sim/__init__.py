"""A small ComfyUI simulator: ComfyUI's HTTP and websocket protocol, real files, faults."""

COMFYUI_VERSION = "0.3.64-sim"

__all__ = ["COMFYUI_VERSION"]
