"""Helpers for the pipeline's integration tests: starting runs, switching the ComfyUI
simulator's faults on and off, and reading what it received."""

from __future__ import annotations

from typing import Any

import httpx

from support.kiln_polling import eventually

HEALTHY = {
    "history_delay_seconds": None,
    "suppress_websocket_messages": None,
    "node_error": None,
    "node_delay_seconds": None,
    "reject_prompts_with_status": None,
}


def set_faults(sim: httpx.Client, **faults: Any) -> None:
    response = sim.post("/sim/faults", json=faults)
    assert response.status_code == 200, response.text


def heal(sim: httpx.Client) -> None:
    """Every fault off and the simulator answering (after a restart's downtime)."""
    set_faults(sim, **HEALTHY)
    eventually(lambda: not sim.get("/sim/state").json()["unavailable"], 10, "simulator up")


def submissions(sim: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    """Every ``POST /prompt`` the simulator received for this run id."""
    return [p for p in sim.get("/sim/prompts").json() if p["prompt_id"] == run_id]


def wait_running(sim: httpx.Client, run_id: str, timeout: float = 15) -> None:
    eventually(lambda: sim.get("/sim/state").json()["running"] == run_id, timeout, "run on sim")


def start_run(gateway: httpx.Client, workflow: str = "noise", **params: Any) -> str:
    """Create a run through the gateway; a tiny ``noise`` picture unless told otherwise."""
    if workflow == "noise" and not params:
        params = {"width": 16, "height": 16}
    response = gateway.post(
        "/api/runs", json={"workflow": workflow, "input_text": "", "params": params}
    )
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id
