from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import (
    ResubmitReason,
    RunCancel,
    RunCancelling,
    RunFailed,
    RunResubmitted,
    RunStored,
    StopReason,
)
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunStatus, Stage
from kiln_gateway.events import RunEventStream


def message(subject: str, event: Any) -> Any:
    return SimpleNamespace(subject=subject, data=event.model_dump_json().encode())


def stream(run_id: str) -> RunEventStream:
    return RunEventStream(nc=None, js=None, run_id=run_id, heartbeat_seconds=1)  # type: ignore[arg-type]


def test_state_changes_move_forward_only() -> None:
    run_id = new_run_id()
    stored = message(f"runs.{run_id}.stored", RunStored(run_id=run_id, filenames=[]))
    change = stream(run_id)._state_change(stored, RunStatus.RUNNING)
    assert change is not None
    assert change.status == RunStatus.COMPLETED
    # Already completed (the snapshot reflected it): nothing to send.
    assert stream(run_id)._state_change(stored, RunStatus.COMPLETED) is None


def test_a_cancel_request_is_not_a_state_and_a_failure_carries_its_error() -> None:
    run_id = new_run_id()
    cancel = message(f"runs.{run_id}.cancel", RunCancel(run_id=run_id))
    assert stream(run_id)._state_change(cancel, RunStatus.RUNNING) is None
    failed = RunFailed(
        run_id=run_id, stage=Stage.BACKEND, code=ErrorCode.BACKEND_ERROR, message="boom"
    )
    change = stream(run_id)._state_change(
        message(f"runs.{run_id}.failed", failed), RunStatus.QUEUED
    )
    assert change is not None
    assert change.status == RunStatus.FAILED
    assert change.error is not None
    assert change.error.message == "boom"


def test_cancelling_and_resubmitted_are_shown_with_the_status_unchanged() -> None:
    run_id = new_run_id()
    cancelling = RunCancelling(run_id=run_id, reason=StopReason.CANCEL, backend="comfyui-0")
    change = stream(run_id)._state_change(
        message(f"runs.{run_id}.cancelling", cancelling), RunStatus.RUNNING
    )
    assert change is not None
    assert (change.status, change.event) == (RunStatus.RUNNING, "cancelling")
    assert change.detail == {"reason": "cancel", "backend": "comfyui-0"}
    resubmitted = RunResubmitted(
        run_id=run_id,
        attempt=2,
        backend="comfyui-1",
        previous_backend="comfyui-0",
        reason=ResubmitReason.BACKEND_LOST,
    )
    change = stream(run_id)._state_change(
        message(f"runs.{run_id}.resubmitted", resubmitted), RunStatus.RUNNING
    )
    assert change is not None
    assert (change.status, change.event) == (RunStatus.RUNNING, "resubmitted")
    assert change.detail is not None
    assert change.detail["previous_backend"] == "comfyui-0"
