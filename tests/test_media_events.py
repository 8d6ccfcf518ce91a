"""Run events are applied exactly once, and outputs are fetched from the backend's /view with
retries, against real NATS, a real media-service process and the ComfyUI simulator."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import RunFailed
from kiln_contracts.layout import run_relpath
from kiln_contracts.records import Stage
from kiln_contracts.subjects import RunEventName
from kiln_devstack.stack import Stack
from support.kiln_polling import eventually
from support.media_helpers import (
    create_run,
    generated_event,
    media,
    media_log_lines,
    png_bytes,
    publish,
    put_on_simulator,
    started_event,
)

pytestmark = pytest.mark.integration
__all__ = ["media"]  # the fixture, imported for pytest


def wait_status(media: httpx.Client, run_id: str, *statuses: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        record: dict[str, Any] = media.get(f"/runs/{run_id}").json()
        return record if record["status"] in statuses else None

    return eventually(probe, 30, f"run {run_id} to be {'/'.join(statuses)}")


def test_a_redelivered_event_changes_nothing(stack: Stack, media: httpx.Client) -> None:
    run_id = create_run(media)
    publish(stack, started_event(stack, run_id), RunEventName.STARTED)
    publish(stack, started_event(stack, run_id), RunEventName.STARTED, redelivery=True)
    output = put_on_simulator(stack, run_id, "9_00001_.png", png_bytes(33, 21))
    event = generated_event(stack, run_id, output)
    publish(stack, event, RunEventName.GENERATED)
    first = wait_status(media, run_id, "completed")

    publish(stack, event, RunEventName.GENERATED, redelivery=True)
    publish(stack, started_event(stack, run_id), RunEventName.STARTED, redelivery=True)
    # The repeats are handled (the media log says so) and change nothing.
    eventually(
        lambda: (
            sum(
                "already applied" in line["message"] and line.get("run_id") == run_id
                for line in media_log_lines(stack)
            )
            >= 3
        ),
        20,
        "media-service to see the repeated events",
    )
    record = media.get(f"/runs/{run_id}").json()
    assert record["entities"] == first["entities"]
    assert [e["event"] for e in record["events"]] == ["created", "started", "generated", "stored"]
    assert [e["filename"] for e in record["entities"]] == [
        "01_input.txt",
        "02_workflow.json",
        "03_output_image.png",
    ]
    image = record["entities"][2]
    assert image["meta"]["width"] == 33
    assert image["meta"]["height"] == 21


def test_an_event_after_a_final_state_is_ignored_and_logged(
    stack: Stack, media: httpx.Client
) -> None:
    run_id = create_run(media)
    output = put_on_simulator(stack, run_id, "9_00001_.png", png_bytes(8, 8))
    publish(stack, generated_event(stack, run_id, output), RunEventName.GENERATED)
    done = wait_status(media, run_id, "completed")

    late = RunFailed(run_id=run_id, stage=Stage.BACKEND, code=ErrorCode.TIMEOUT, message="late")
    publish(stack, late, RunEventName.FAILED)
    eventually(
        lambda: any(
            line.get("run_id") == run_id and "ignoring failed: run is completed" in line["message"]
            for line in media_log_lines(stack)
        ),
        20,
        "media-service to log the late event",
    )
    record = media.get(f"/runs/{run_id}").json()
    assert record["status"] == "completed"
    assert record["error"] is None
    assert record["events"] == done["events"]


def test_an_output_missing_at_first_is_fetched_by_a_retry(
    stack: Stack, media: httpx.Client
) -> None:
    run_id = create_run(media)
    data = png_bytes(16, 9)
    output = put_on_simulator(stack, run_id, "9_00001_.png", data)
    file_on_sim = stack.var_dir / "comfyui-sim" / "output" / output.subfolder / output.filename
    file_on_sim.unlink()  # the backend answers 404 until it is back
    publish(stack, generated_event(stack, run_id, output), RunEventName.GENERATED)
    eventually(
        lambda: any(
            line.get("run_id") == run_id and "attempt 1 of" in line["message"]
            for line in media_log_lines(stack)
        ),
        20,
        "a failed first fetch",
    )
    file_on_sim.write_bytes(data)
    record = wait_status(media, run_id, "completed", "failed")
    assert record["status"] == "completed", record["error"]
    stored = media.get(f"/runs/{run_id}/files/02_output_image.png")
    assert stored.content == data


def test_a_permanently_missing_output_fails_the_run_naming_it(
    stack: Stack, media: httpx.Client
) -> None:
    run_id = create_run(media)
    output = put_on_simulator(stack, run_id, "9_00001_.png", png_bytes(4, 4))
    missing = output.model_copy(update={"filename": "9_00002_.png"})
    publish(stack, generated_event(stack, run_id, output, missing), RunEventName.GENERATED)
    record = wait_status(media, run_id, "failed")
    error = record["error"]
    assert error["stage"] == "media"
    assert error["code"] == "storage_failed"
    assert "9_00002_.png" in error["message"]
    assert error["details"]["output"]["filename"] == "9_00002_.png"
    attempts = [
        line
        for line in media_log_lines(stack)
        if line.get("run_id") == run_id and "9_00002_.png" in line["message"]
    ]
    assert any("attempt 3 of 4" in line["message"] for line in attempts)
    # The output that did arrive is kept for research; no temp file is left behind.
    assert [e["type"] for e in record["entities"]] == ["input", "output_image"]
    folder = stack.storage_root / run_relpath(run_id)
    assert sorted(p.name for p in folder.iterdir()) == [
        ".lock",
        "01_input.txt",
        "02_output_image.png",
        "metadata.json",
    ]


def test_bytes_that_are_not_what_the_name_says_fail_the_run(
    stack: Stack, media: httpx.Client
) -> None:
    run_id = create_run(media)
    output = put_on_simulator(stack, run_id, "9_00001_.png", b"GIF89a" + b"\0" * 64)
    publish(stack, generated_event(stack, run_id, output), RunEventName.GENERATED)
    record = wait_status(media, run_id, "failed")
    assert record["error"]["code"] == "storage_failed"
    assert "expected png data, found gif" in record["error"]["message"]
