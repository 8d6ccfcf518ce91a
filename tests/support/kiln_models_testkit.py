"""Installing and removing model files on the ComfyUI simulator, and waiting until kiln's
workflow catalogue (pipeline health check, then the gateway's cached copy) shows it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from support.kiln_polling import eventually

SD15 = "sd15_text_to_image"
CHECKPOINT = "v1-5-pruned-emaonly.safetensors"
MISSING_REASON = f"checkpoint {CHECKPOINT} is not installed on any backend"
# A health check (2 s) and the gateway's catalogue cache (10 s), with room for a loaded machine.
CATALOGUE_SECONDS = 40


def listed(gateway: httpx.Client) -> dict[str, dict[str, Any]]:
    response = gateway.get("/api/workflows")
    assert response.status_code == 200, response.text
    return {w["name"]: w for w in response.json()}


def wait_reason(gateway: httpx.Client, workflow: str, reason: str | None) -> None:
    eventually(
        lambda: listed(gateway)[workflow]["unavailable_reason"] == reason,
        CATALOGUE_SECONDS,
        f"{workflow} listed with unavailable_reason {reason!r}",
    )


@contextmanager
def checkpoint_installed(simulator: httpx.Client, gateway: httpx.Client) -> Iterator[None]:
    """The SD 1.5 checkpoint on the simulator, until the block ends (then gone again)."""
    simulator.post("/sim/models", json={"checkpoints": [CHECKPOINT]}).raise_for_status()
    try:
        wait_reason(gateway, SD15, None)
        yield
    finally:
        simulator.post("/sim/models", json={"checkpoints": []}).raise_for_status()
        wait_reason(gateway, SD15, MISSING_REASON)
