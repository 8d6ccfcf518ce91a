import json

import pytest
from kiln_contracts.events import RunFailed, RunRequested
from kiln_contracts.layout import (
    InvalidFilenameError,
    entity_filename,
    parse_entity_filename,
    run_relpath,
)
from kiln_contracts.records import RunRequest, RunStatus, can_transition
from kiln_contracts.subjects import (
    RunEventName,
    msg_id,
    parse_run_event_subject,
    progress_subject,
    run_event_subject,
)
from kiln_contracts.workflows import (
    InvalidParamsError,
    ParamSpec,
    WorkflowManifest,
    resolve_params,
)

RUN = "01900000-0000-7000-8000-000000000000"


def test_subjects_carry_the_run_id() -> None:
    assert run_event_subject(RUN, RunEventName.GENERATED) == f"runs.{RUN}.generated"
    assert progress_subject(RUN) == f"progress.runs.{RUN}"
    assert msg_id(RUN, "stored") == f"{RUN}:stored"
    assert parse_run_event_subject(f"runs.{RUN}.failed") == (RUN, RunEventName.FAILED)
    with pytest.raises(ValueError, match="not a run event subject"):
        parse_run_event_subject("runs.requested")
    with pytest.raises(ValueError, match="UUIDv7"):
        run_event_subject("x.y", RunEventName.STARTED)


def test_layout_puts_runs_under_their_utc_day() -> None:
    assert str(run_relpath(RUN)) == f"runs/2024-06-10/{RUN}"
    assert entity_filename(3, "output_image", "png") == "03_output_image.png"
    assert entity_filename(120, "output_audio", "flac") == "120_output_audio.flac"


@pytest.mark.parametrize(
    "bad",
    [
        "../metadata.json",
        "metadata.json",
        "03_output_image.png/..",
        "/etc/passwd",
        "03_x.PNG",
        "03_outputimage",
        "03_out put.png",
        "03_out\\put.png",
        "03_ïmage.png",
        "03_x.png\x00",
        "0" * 300 + "_x.png",
        ".lock",
        "%2e%2e",
    ],
)
def test_entity_filenames_are_strict(bad: str) -> None:
    with pytest.raises(InvalidFilenameError):
        parse_entity_filename(bad)


def test_state_machine() -> None:
    assert can_transition(RunStatus.QUEUED, RunStatus.RUNNING)
    assert can_transition(RunStatus.QUEUED, RunStatus.STORING)
    assert can_transition(RunStatus.RUNNING, RunStatus.FAILED)
    assert not can_transition(RunStatus.STORING, RunStatus.RUNNING)
    for final in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED):
        for other in RunStatus:
            assert not can_transition(final, other)


def test_events_validate_their_run_id() -> None:
    with pytest.raises(ValueError, match="UUIDv7"):
        RunRequested(run_id="nope", request=RunRequest(workflow="noise", input_text="x"))
    failed = RunFailed.model_validate_json(
        RunFailed(run_id=RUN, stage="backend", code="timeout", message="m").model_dump_json()
    )
    assert failed.code == "timeout"


def _manifest() -> WorkflowManifest:
    return WorkflowManifest(
        name="t",
        title={"en": "T", "de": "T"},
        kind="image",
        params={
            "width": ParamSpec(type="int", default=512, minimum=16, maximum=2048),
            "strength": ParamSpec(type="float", default=0.5, minimum=0, maximum=1),
            "style": ParamSpec(type="string", default="a", choices=["a", "b"]),
        },
    )


def test_params_get_defaults_and_pass_checks() -> None:
    resolved = resolve_params(_manifest(), {"width": 64, "seed": 7})
    assert resolved == {"width": 64, "seed": 7, "strength": 0.5, "style": "a"}


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"width": 8}, "width"),
        ({"width": 4096}, "width"),
        ({"width": "512"}, "width"),
        ({"width": True}, "width"),
        ({"strength": 2}, "strength"),
        ({"style": "c"}, "style"),
        ({"nope": 1}, "nope"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_params_are_named(params: dict[str, object], name: str) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        resolve_params(_manifest(), params)  # type: ignore[arg-type]
    assert name in caught.value.problems


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_a_json_body_are_refused(literal: str) -> None:
    # The body as FastAPI parses it: Python's json turns these literals into floats.
    params = json.loads(f'{{"strength": {literal}, "scale": {literal}}}')
    manifest = _manifest().model_copy(
        update={"params": {**_manifest().params, "scale": ParamSpec(type="float", default=1.0)}}
    )
    with pytest.raises(InvalidParamsError) as caught:
        resolve_params(manifest, params)
    assert caught.value.problems == {
        "strength": "must be a finite number",
        "scale": "must be a finite number",
    }


def test_text_with_a_lone_surrogate_is_refused() -> None:
    assert RunRequest(workflow="noise", input_text="ein Drache 🐉").input_text == "ein Drache 🐉"
    with pytest.raises(ValueError, match="lone surrogate"):
        RunRequest(workflow="noise", input_text="broken \ud800")
