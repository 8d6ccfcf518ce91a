"""Events know their name, subject and de-duplication id; the subjects are declared once."""

from __future__ import annotations

import pytest
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import (
    RunCancel,
    RunFailed,
    RunGenerated,
    RunProgress,
    RunRequested,
    RunStored,
    RunTextStage,
    TextStageOutput,
    event_type_for,
    run_event_types,
)
from kiln_contracts.exports import (
    ExportCompleted,
    ExportFailed,
    ExportProgress,
    ExportRequest,
    ExportRequested,
    ExportState,
)
from kiln_contracts.records import RunError, RunRequest, RunStatus, Stage
from kiln_contracts.subjects import (
    RunEventName,
    parse_run_event_subject,
    subject_matches,
)

RUN = "01900000-0000-7000-8000-000000000000"


def test_every_run_event_name_has_exactly_one_model() -> None:
    names = [t.event_name for t in run_event_types()]
    assert sorted(names) == sorted(RunEventName)


def test_run_events_derive_their_subjects_and_filters() -> None:
    request = RunRequest(workflow="noise", input_text="x")
    assert RunRequested(run_id=RUN, request=request).subject == "runs.requested"
    assert RunRequested.subject_filter() == "runs.requested"
    assert RunStored(run_id=RUN, filenames=[]).subject == f"runs.{RUN}.stored"
    assert RunStored.subject_filter() == "runs.*.stored"
    progress = RunProgress(run_id=RUN, node=None, value=0, max=1, share=0)
    assert progress.subject == f"progress.runs.{RUN}"
    assert RunCancel(run_id=RUN).msg_id == f"{RUN}:cancel"
    stage = RunTextStage(
        run_id=RUN, output=TextStageOutput(stage="prompt", index=2, model="m", text="t")
    )
    assert stage.msg_id == f"{RUN}:text_stage:2"


def test_a_subject_names_its_event_type() -> None:
    types = run_event_types()
    assert event_type_for(f"runs.{RUN}.generated", types) is RunGenerated
    assert event_type_for("runs.requested", types) is RunRequested
    assert event_type_for(f"progress.runs.{RUN}", types) is RunProgress
    assert event_type_for(f"runs.{RUN}.unheard_of", types) is None
    assert event_type_for(f"runs.{RUN}.failed", (RunStored,)) is None


def test_only_per_run_subjects_parse_as_run_event_subjects() -> None:
    for subject in (f"runs.{RUN}.requested", f"runs.{RUN}.progress"):
        with pytest.raises(ValueError, match="not a run event subject"):
            parse_run_event_subject(subject)


@pytest.mark.parametrize(
    ("subject_filter", "subject", "matches"),
    [
        ("runs.*.stored", f"runs.{RUN}.stored", True),
        ("runs.*.stored", f"runs.{RUN}.failed", False),
        ("runs.*.stored", "runs.stored", False),
        ("runs.requested", "runs.requested", True),
        ("runs.>", f"runs.{RUN}.stored", True),
        ("runs.>", "runs", False),
        ("runs.*", f"runs.{RUN}.stored", False),
    ],
)
def test_subject_matching_follows_nats(subject_filter: str, subject: str, matches: bool) -> None:
    assert subject_matches(subject_filter, subject) is matches


def test_state_changes_are_declared_on_the_events() -> None:
    moves = {t.event_name: t.moves_to for t in run_event_types() if t.moves_to is not None}
    assert moves == {
        RunEventName.STARTED: RunStatus.RUNNING,
        RunEventName.GENERATED: RunStatus.STORING,
        RunEventName.STORED: RunStatus.COMPLETED,
        RunEventName.FAILED: RunStatus.FAILED,
        RunEventName.CANCELLED: RunStatus.CANCELLED,
    }


def test_run_requested_carries_the_request() -> None:
    request = RunRequest(workflow="noise", input_text="ein Drache", params={"seed": 3})
    sent = RunRequested(run_id=RUN, request=request)
    received = RunRequested.model_validate_json(sent.model_dump_json())
    assert received.request == request


def test_a_run_requested_of_the_previous_version_still_decodes() -> None:
    flat = (
        f'{{"run_id": "{RUN}", "at": "2026-11-21T10:00:00Z", "workflow": "noise", '
        '"input_text": "x", "params": {"seed": 1}, "device_id": "d", "session_id": null}'
    )
    requested = RunRequested.model_validate_json(flat)
    assert requested.request == RunRequest(
        workflow="noise", input_text="x", params={"seed": 1}, device_id="d"
    )


def test_one_failure_shape_for_event_record_and_body() -> None:
    error = RunError(
        stage=Stage.GATEWAY, code=ErrorCode.QUEUE_UNAVAILABLE, message="m", retryable=True
    )
    failed = RunFailed.of(RUN, error)
    assert failed.error == error
    assert type(failed.error) is RunError
    # The event stays flat on the wire: the RunError fields beside run_id.
    wire = RunFailed.model_validate_json(failed.model_dump_json())
    assert (wire.stage, wire.code, wire.retryable) == (Stage.GATEWAY, "queue_unavailable", True)
    with pytest.raises(ValueError, match="stage"):
        RunError.model_validate({"stage": "nowhere", "code": "timeout", "message": "m"})


def test_export_events_derive_their_subjects_and_ids() -> None:
    requested = ExportRequested(export_id=RUN, request=ExportRequest())
    assert requested.subject == "exports.requested"
    assert requested.msg_id == f"{RUN}:requested"
    progress = ExportProgress(
        export_id=RUN, state=ExportState.RUNNING, runs_done=2, runs_total=5, bytes=10
    )
    assert progress.subject == f"exports.{RUN}.progress"
    assert progress.msg_id == f"{RUN}:progress:running:2:10"
    completed = ExportCompleted(export_id=RUN, runs_total=5, bytes=10, sha256="0" * 64)
    assert completed.subject == f"exports.{RUN}.completed"
    assert ExportFailed.subject_filter() == "exports.*.failed"
    streamed = (ExportProgress, ExportCompleted, ExportFailed)
    assert event_type_for(f"exports.{RUN}.completed", streamed) is ExportCompleted


def test_a_failed_record_written_before_still_loads() -> None:
    # metadata.json as the previous version wrote it for a run failed by the gateway.
    from kiln_contracts.records import RunRecord

    stored = (
        f'{{"schema_version": 1, "run_id": "{RUN}", "status": "failed", '
        '"created_at": "2026-11-21T10:00:00Z", "updated_at": "2026-11-21T10:00:01Z", '
        '"request": {"workflow": "noise", "input_text": "x", "params": {}, "device_id": null, '
        '"session_id": null, "safety_level": null}, "backend": null, "entities": [], '
        '"events": [], "error": {"stage": "gateway", "code": "queue_unavailable", '
        '"message": "could not queue the run: TimeoutError", "retryable": true, "details": {}}}'
    )
    record = RunRecord.model_validate_json(stored)
    assert record.error == RunError(
        stage=Stage.GATEWAY,
        code=ErrorCode.QUEUE_UNAVAILABLE,
        message="could not queue the run: TimeoutError",
        retryable=True,
    )
