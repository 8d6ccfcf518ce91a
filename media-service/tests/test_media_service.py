from __future__ import annotations

import pytest
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import (
    BackendOutcome,
    GeneratedOutput,
    LateStop,
    ResubmitReason,
    RunCancelled,
    RunCancelling,
    RunFailed,
    RunGenerated,
    RunResubmitted,
    RunStarted,
    StopReason,
)
from kiln_contracts.records import RunStatus, Stage, utc_now
from kiln_media.ports import OutputFetchError
from kiln_media.service import MediaService
from kiln_storage.local import RunStore
from media_fakes import FakeSource, RecordingPublisher, tiny_png

pytestmark = pytest.mark.anyio


def generated(run_id: str, *names: str) -> RunGenerated:
    return RunGenerated(
        run_id=run_id,
        backend="comfyui-0",
        backend_url="http://backend",
        outputs=[
            GeneratedOutput(node_id="3", kind="images", filename=n, subfolder=f"kiln/{run_id}")
            for n in names
        ],
    )


async def test_started_records_backend_and_graph_once(service: MediaService, run_id: str) -> None:
    event = RunStarted(
        run_id=run_id, backend="comfyui-0", backend_url="http://b", seed=42, graph={"1": {}}
    )
    await service.on_started(event)
    await service.on_started(event)
    record = await service.get_run(run_id)
    assert record.status == RunStatus.RUNNING
    assert record.backend == "comfyui-0"
    assert [e.filename for e in record.entities] == ["01_input.txt", "02_workflow.json"]
    assert record.entities[1].meta["seed"] == 42
    assert [e.event for e in record.events] == ["created", "started"]


async def test_generated_stores_each_output_once_and_completes(
    service: MediaService,
    source: FakeSource,
    publisher: RecordingPublisher,
    store: RunStore,
    run_id: str,
) -> None:
    source.files["3_00001_.png"] = tiny_png(5, 4)
    event = generated(run_id, "3_00001_.png")
    await service.on_generated(event)
    await service.on_generated(event)  # redelivered
    record = await service.get_run(run_id)
    assert record.status == RunStatus.COMPLETED
    outputs = [e for e in record.entities if e.type == "output_image"]
    assert len(outputs) == 1
    assert outputs[0].filename == "02_output_image.png"
    assert outputs[0].mime == "image/png"
    assert outputs[0].meta["width"] == 5
    assert outputs[0].meta["height"] == 4
    assert (store.run_dir(run_id) / "02_output_image.png").read_bytes() == tiny_png(5, 4)
    assert source.calls == ["3_00001_.png"]
    # The redelivery announces `stored` again with the same content (JetStream drops the repeat
    # by its Nats-Msg-Id), so a crash between storing and announcing cannot lose the announcement.
    assert [e.filenames for e in publisher.stored_events] == [["02_output_image.png"]] * 2


async def test_transient_fetch_errors_are_retried(
    service: MediaService, source: FakeSource, run_id: str
) -> None:
    source.files["a.png"] = tiny_png()
    source.failures["a.png"] = [OutputFetchError("reset", retryable=True)] * 2
    await service.on_generated(generated(run_id, "a.png"))
    assert (await service.get_run(run_id)).status == RunStatus.COMPLETED
    assert source.calls == ["a.png"] * 3


async def test_permanent_fetch_failure_fails_the_run_naming_the_output(
    service: MediaService, publisher: RecordingPublisher, store: RunStore, run_id: str
) -> None:
    await service.on_generated(generated(run_id, "missing.png"))
    record = await service.get_run(run_id)
    assert record.status == RunStatus.FAILED
    assert record.error is not None
    assert record.error.code == ErrorCode.STORAGE_FAILED
    assert record.error.stage == Stage.MEDIA
    assert "missing.png" in record.error.message
    assert publisher.failed_events
    assert not publisher.stored_events
    assert not [p for p in store.run_dir(run_id).iterdir() if p.name.startswith(".incoming")]


@pytest.mark.parametrize("data", [b"", b"GIF89a not a png at all"])
async def test_empty_or_wrong_format_output_fails(
    service: MediaService, source: FakeSource, run_id: str, data: bytes
) -> None:
    source.files["x.png"] = data
    await service.on_generated(generated(run_id, "x.png"))
    record = await service.get_run(run_id)
    assert record.status == RunStatus.FAILED
    assert record.error is not None
    assert "x.png" in record.error.message


async def test_events_after_a_final_state_change_nothing(
    service: MediaService, source: FakeSource, run_id: str
) -> None:
    await service.on_failed(
        RunFailed(run_id=run_id, stage=Stage.BACKEND, code=ErrorCode.TIMEOUT, message="too slow")
    )
    source.files["late.png"] = tiny_png()
    await service.on_generated(generated(run_id, "late.png"))
    await service.on_started(
        RunStarted(run_id=run_id, backend="b", backend_url="http://b", graph={})
    )
    record = await service.get_run(run_id)
    assert record.status == RunStatus.FAILED
    assert record.error is not None
    assert record.error.code == ErrorCode.TIMEOUT
    assert [e.type for e in record.entities] == ["input"]
    assert source.calls == []


async def test_create_is_idempotent_for_the_same_request_only(service: MediaService) -> None:
    from kiln_contracts.ids import new_run_id
    from kiln_contracts.records import RunRequest
    from kiln_storage.base import RunExistsError

    run_id = new_run_id()
    request = RunRequest(workflow="noise", input_text="a kite")
    first = await service.create_run(run_id, request)
    again = await service.create_run(run_id, request)
    assert again == first
    with pytest.raises(RunExistsError):
        await service.create_run(run_id, RunRequest(workflow="noise", input_text="another"))


async def test_a_started_applied_after_the_outputs_keeps_history_and_provenance(
    service: MediaService, source: FakeSource, run_id: str
) -> None:
    from datetime import timedelta

    created_at = (await service.get_run(run_id)).events[0].at
    started = RunStarted(
        run_id=run_id,
        backend="comfyui-0",
        backend_url="http://b",
        seed=9,
        graph={"1": {}},
        at=created_at + timedelta(milliseconds=1),
    )
    source.files["a.png"] = tiny_png()
    await service.on_generated(generated(run_id, "a.png"))
    await service.on_started(started)
    await service.on_started(started)  # and redelivered
    record = await service.get_run(run_id)
    assert record.status == RunStatus.COMPLETED
    assert [e.event for e in record.events] == ["created", "started", "generated", "stored"]
    assert record.backend == "comfyui-0"
    workflows = [e for e in record.entities if e.type == "workflow"]
    assert len(workflows) == 1
    assert workflows[0].meta["seed"] == 9


async def test_a_started_after_a_failure_is_ignored(service: MediaService, run_id: str) -> None:
    await service.on_failed(
        RunFailed(run_id=run_id, stage=Stage.BACKEND, code=ErrorCode.TIMEOUT, message="slow")
    )
    await service.on_started(
        RunStarted(run_id=run_id, backend="b", backend_url="http://b", graph={})
    )
    record = await service.get_run(run_id)
    assert [e.event for e in record.events] == ["created", "failed"]
    assert [e.type for e in record.entities] == ["input"]


async def test_cancelling_and_resubmitted_are_history_without_a_state_change(
    service: MediaService, run_id: str
) -> None:
    await service.on_started(
        RunStarted(run_id=run_id, backend="comfyui-0", backend_url="http://b", graph={"1": {}})
    )
    resubmitted = RunResubmitted(
        run_id=run_id,
        attempt=2,
        backend="comfyui-1",
        previous_backend="comfyui-0",
        reason=ResubmitReason.BACKEND_LOST,
    )
    await service.on_resubmitted(resubmitted)
    await service.on_resubmitted(resubmitted)  # redelivered
    cancelling = RunCancelling(run_id=run_id, reason=StopReason.CANCEL, backend="comfyui-1")
    await service.on_cancelling(cancelling)
    record = await service.get_run(run_id)
    assert record.status == RunStatus.RUNNING
    assert record.backend == "comfyui-1"
    assert [e.event for e in record.events] == ["created", "started", "resubmitted", "cancelling"]
    assert record.events[2].detail == {
        "attempt": 2,
        "backend": "comfyui-1",
        "previous_backend": "comfyui-0",
        "reason": "backend_lost",
    }
    await service.on_cancelled(
        RunCancelled(
            run_id=run_id,
            backend="comfyui-1",
            backend_outcome=BackendOutcome.COMPLETED,
            message="cancelled: comfyui-1 completed it after the cancel",
        )
    )
    record = await service.get_run(run_id)
    assert record.status == RunStatus.CANCELLED
    assert record.events[-1].detail["backend_outcome"] == "completed"
    # A cancelling applied after the end, but sent before it, still goes in at its time.
    late = RunCancelling(
        run_id=run_id, reason=StopReason.DEADLINE, backend="comfyui-1", at=record.events[2].at
    )
    await service.on_cancelling(late)
    record = await service.get_run(run_id)
    assert record.status == RunStatus.CANCELLED
    assert [e.event for e in record.events].count("cancelling") == 2
    assert record.events[-1].event == "cancelled"


async def test_outputs_kept_after_a_late_cancel_complete_the_run_and_say_so(
    service: MediaService, source: FakeSource, run_id: str
) -> None:
    source.files["3_00001_.png"] = tiny_png(5, 4)
    event = generated(run_id, "3_00001_.png").model_copy(
        update={"late_stop": LateStop(reason=StopReason.CANCEL, requested_at=utc_now())}
    )
    await service.on_generated(event)
    record = await service.get_run(run_id)
    assert record.status == RunStatus.COMPLETED
    generated_entry = next(e for e in record.events if e.event == "generated")
    assert generated_entry.detail["late_stop"]["reason"] == "cancel"  # type: ignore[index]
