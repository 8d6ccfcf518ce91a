"""Workflows show what the backends can run (issue 15 item 6): the pipeline reads each backend's
/object_info at start and on every health check; a workflow whose node classes or model files
no backend has is listed unavailable with the reason, refused with 422 before anything is
created, and shown per backend at /api/system."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support.kiln_models_testkit import (
    CHECKPOINT,
    MISSING_REASON,
    SD15,
    checkpoint_installed,
    listed,
)
from support.kiln_polling import wait_final

pytestmark = pytest.mark.integration


def _backends(gateway: httpx.Client) -> dict[str, dict[str, Any]]:
    services = gateway.get("/api/system").json()["services"]
    pipeline = next(s for s in services if s["service"] == "pipeline-service")
    return {b["name"]: b for b in pipeline["details"]["backends"]}


def _create(gateway: httpx.Client, **params: Any) -> httpx.Response:
    body = {"workflow": SD15, "input_text": "a lighthouse", "params": params}
    return gateway.post("/api/runs", json=body)


def test_a_workflow_whose_checkpoint_no_backend_has_is_unavailable_and_refused(
    gateway: httpx.Client, simulator: httpx.Client
) -> None:
    # The simulator starts like a ComfyUI without models.
    workflows = listed(gateway)
    assert workflows[SD15]["unavailable_reason"] == MISSING_REASON
    for name in ("noise", "animation", "audio", "video"):
        assert workflows[name]["unavailable_reason"] is None, name

    before = len(simulator.get("/sim/prompts").json())
    response = _create(gateway)
    assert response.status_code == 422, response.text
    assert response.json() == {"error": "workflow_unavailable", "detail": MISSING_REASON}
    assert len(simulator.get("/sim/prompts").json()) == before  # nothing reached ComfyUI

    [backend] = _backends(gateway).values()
    assert backend["missing"] == {SD15: [f"checkpoint {CHECKPOINT} is not installed"]}
    assert backend["object_info_error"] is None


def test_with_the_checkpoint_installed_the_workflow_is_offered_and_runs(
    gateway: httpx.Client, simulator: httpx.Client
) -> None:
    with checkpoint_installed(simulator, gateway):
        [backend] = _backends(gateway).values()
        assert backend["missing"] == {}
        response = _create(gateway, width=256, height=256, steps=2)
        assert response.status_code == 202, response.text
        record = wait_final(gateway, response.json()["run_id"])
        assert record["status"] == "completed", record["error"]
        [image] = [e for e in record["entities"] if e["type"] == "output_image"]
        assert image["mime"] == "image/png"

        # A run naming another file (the checkpoint is a parameter) is placed nowhere: the
        # pipeline refuses it before submitting, with the reason.
        response = _create(gateway, checkpoint="not-installed.safetensors")
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]
        record = wait_final(gateway, run_id)
        assert record["status"] == "failed"
        assert record["error"]["code"] == "workflow_unavailable"
        assert (
            "checkpoint not-installed.safetensors is not installed on any backend"
            in (record["error"]["message"])
        )
        assert not [p for p in simulator.get("/sim/prompts").json() if p["prompt_id"] == run_id]
    # Removed again: listed unavailable again (checked by checkpoint_installed on exit).
    assert listed(gateway)[SD15]["unavailable_reason"] == MISSING_REASON
