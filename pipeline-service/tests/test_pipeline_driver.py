from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import BackendOutcome, ResubmitReason, RunRequested, StopReason
from kiln_contracts.records import RunRequest
from kiln_pipeline.comfy import ComfyClient
from kiln_pipeline.driver import PollPolicy, RunDriver
from kiln_pipeline.pool import Backend, BackendPool
from kiln_pipeline.templates import WorkflowTemplate, load_templates
from kiln_pipeline.watcher import BackendWatcher
from kiln_safety.screen import build_screen
from pipeline_fakes import FakeComfy, FakeLedger, RecordingSink

pytestmark = pytest.mark.anyio

RUN = "01900000-0000-7000-8000-000000000001"
FAST = PollPolicy(
    initial_seconds=0.01, max_seconds=0.02, lost_grace_seconds=0.05, backend_down_seconds=0.1
)


@dataclass
class Rig:
    comfy: FakeComfy
    sink: RecordingSink
    ledger: FakeLedger
    backend: Backend
    driver: RunDriver


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    comfy = FakeComfy()
    async with httpx.AsyncClient(transport=httpx.MockTransport(comfy.handle)) as http:
        client = ComfyClient("comfyui-0", "http://comfy", http)
        backend = Backend(client, BackendWatcher("comfyui-0", "ws://unused"), "kiln-test", 2)
        sink, ledger = RecordingSink(), FakeLedger()
        driver = RunDriver(
            load_templates(), BackendPool([backend]), sink, ledger, FAST, screen=build_screen(None)
        )
        yield Rig(comfy, sink, ledger, backend, driver)


def with_deadline(rig: Rig, seconds: float) -> None:
    template = rig.driver.templates["noise"]
    manifest = template.manifest.model_copy(update={"deadline_seconds": seconds})
    rig.driver.templates = {"noise": WorkflowTemplate(manifest, template.graph)}


def request(**params: object) -> RunRequested:
    request = RunRequest(workflow="noise", input_text="", params=dict(params))
    return RunRequested(run_id=RUN, request=request)


async def test_a_first_delivery_is_submitted_once_and_its_outputs_reported(rig: Rig) -> None:
    await rig.driver.drive(request(seed=5), redelivered=False)
    assert rig.comfy.submitted == [RUN]
    assert rig.sink.started_events[0].seed == 5
    assert rig.sink.started_events[0].graph["2"]["inputs"]["seed"] == 5  # type: ignore[index]
    [generated] = rig.sink.generated_events
    assert [o.filename for o in generated.outputs] == ["3_00001_.png"]
    assert rig.backend.in_flight == 0
    assert rig.driver.active == {}


async def test_a_redelivery_follows_the_known_prompt_instead_of_submitting_again(
    rig: Rig,
) -> None:
    rig.comfy.finish(RUN)
    await rig.driver.drive(request(), redelivered=True)
    assert rig.comfy.submitted == []
    assert len(rig.sink.generated_events) == 1


async def test_without_a_given_seed_each_run_gets_a_fresh_one(rig: Rig) -> None:
    rig.comfy.finish_on_submit = True
    await rig.driver.drive(request(), redelivered=False)
    rig.comfy.history.clear()
    await rig.driver.drive(request(), redelivered=False)
    first, second = (e.seed for e in rig.sink.started_events)
    assert first != second


async def test_a_prompt_lost_once_is_resubmitted_under_the_same_id(rig: Rig) -> None:
    rig.comfy.forget_on_submit = True
    rig.comfy.finish_on_submit = True

    async def come_back() -> None:
        await rig.comfy.wait_submissions(2)
        rig.comfy.finish(RUN)

    helper = asyncio.create_task(come_back())
    await rig.driver.drive(request(), redelivered=False)
    await helper
    assert rig.comfy.submitted == [RUN, RUN]
    assert len(rig.sink.generated_events) == 1
    assert rig.sink.failed_events == []


async def test_a_prompt_lost_twice_fails_as_backend_lost(rig: Rig) -> None:
    rig.comfy.forget_on_submit = True
    await rig.driver.drive(request(), redelivered=False)
    assert rig.comfy.submitted == [RUN, RUN]
    [failed] = rig.sink.failed_events
    assert failed.code == ErrorCode.BACKEND_LOST


async def test_a_run_past_its_deadline_times_out_and_is_removed(rig: Rig) -> None:
    rig.comfy.finish_on_submit = False
    with_deadline(rig, 0.1)
    await rig.driver.drive(request(), redelivered=False)
    [failed] = rig.sink.failed_events
    assert failed.code == ErrorCode.TIMEOUT
    assert rig.comfy.deleted == [RUN]
    assert rig.comfy.interrupted == [RUN]


async def test_a_cancel_while_following_stops_the_prompt_and_reports_cancelled(rig: Rig) -> None:
    rig.comfy.finish_on_submit = False
    task = asyncio.create_task(rig.driver.drive(request(), redelivered=False))
    await rig.comfy.wait_submissions(1)
    assert rig.driver.request_cancel(RUN)
    await task
    assert len(rig.sink.cancelled_events) == 1
    assert rig.comfy.deleted == [RUN]
    assert rig.comfy.interrupted == [RUN]
    assert rig.sink.generated_events == []
    assert not rig.driver.request_cancel(RUN)  # no longer in flight here


async def test_a_cancel_requested_before_pickup_never_submits(rig: Rig) -> None:
    rig.ledger.cancelled.add(RUN)
    await rig.driver.drive(request(), redelivered=False)
    assert rig.comfy.submitted == []
    assert len(rig.sink.cancelled_events) == 1
    assert rig.sink.started_events == []


async def test_a_down_backend_fails_the_run_as_unavailable_at_its_deadline(rig: Rig) -> None:
    rig.comfy.down = True
    with_deadline(rig, 0.2)
    await rig.driver.drive(request(), redelivered=False)
    [failed] = rig.sink.failed_events
    assert failed.code == ErrorCode.BACKEND_UNAVAILABLE
    assert rig.backend.healthy is False


async def test_progress_is_throttled_and_carries_the_share_of_nodes_done(rig: Rig) -> None:
    rig.comfy.finish_on_submit = False
    task = asyncio.create_task(rig.driver.drive(request(), redelivered=False))
    await rig.comfy.wait_submissions(1)
    queue = rig.backend.watcher._subscribers[RUN]
    for node in ("1", "2", "3"):
        queue.put_nowait({"type": "executing", "data": {"node": node, "prompt_id": RUN}})
        for step in range(1, 51):  # 50 progress messages at once
            queue.put_nowait({"type": "progress", "data": {"node": node, "value": step, "max": 50}})
        await asyncio.sleep(0.12)
    rig.comfy.finish(RUN)
    queue.put_nowait({"type": "executing", "data": {"node": None, "prompt_id": RUN}})
    await task
    events = rig.sink.progress_events
    assert 3 <= len(events) <= 6  # 153 messages over ~0.4 s, at most one per 0.1 s
    assert [e.node for e in events][-1] == "3"
    assert events[0].share == 0
    assert events[-1].share == pytest.approx(2 / 3)


async def test_a_finished_prompt_whose_history_never_comes_is_lost_not_timed_out(
    rig: Rig,
) -> None:
    rig.comfy.forget_on_submit = True  # submitted, then a restart wipes queue and history

    async def say_finished() -> None:
        await rig.comfy.wait_submissions(1)
        queue = rig.backend.watcher._subscribers[RUN]
        queue.put_nowait({"type": "executing", "data": {"node": None, "prompt_id": RUN}})
        await rig.comfy.wait_submissions(2)
        rig.comfy.finish(RUN)

    helper = asyncio.create_task(say_finished())
    await rig.driver.drive(request(), redelivered=False)
    await helper
    assert rig.comfy.submitted == [RUN, RUN]
    assert len(rig.sink.generated_events) == 1


# What ComfyUI 0.3.64 answers for a graph naming a node class it does not have.
UNKNOWN_NODE = {
    "error": {
        "type": "invalid_prompt",
        "message": "Cannot execute because node NoSuchNode does not exist.",
        "details": "Node ID '#9'",
        "extra_info": {},
    },
    "node_errors": {},
}
# ... and for a checkpoint that is not installed.
CHECKPOINT_MISSING = {
    "error": {
        "type": "prompt_outputs_failed_validation",
        "message": "Prompt outputs failed validation",
        "details": "Value not in list: ckpt_name: 'v1-5-pruned-emaonly.safetensors' not in []",
        "extra_info": {},
    },
    "node_errors": {
        "4": {
            "errors": [
                {
                    "type": "value_not_in_list",
                    "message": "Value not in list",
                    "details": "ckpt_name: 'v1-5-pruned-emaonly.safetensors' not in []",
                    "extra_info": {
                        "input_name": "ckpt_name",
                        "input_config": [[], {"tooltip": "The name of the checkpoint."}],
                        "received_value": "v1-5-pruned-emaonly.safetensors",
                    },
                }
            ],
            "dependent_outputs": ["9"],
            "class_type": "CheckpointLoaderSimple",
        }
    },
}


async def test_a_rejected_graph_keeps_the_node_comfyui_named(rig: Rig) -> None:
    rig.comfy.reject_with = UNKNOWN_NODE
    await rig.driver.drive(request(), redelivered=False)
    [failed] = rig.sink.failed_events
    assert failed.code == ErrorCode.INVALID_WORKFLOW
    assert "NoSuchNode does not exist" in failed.message
    assert "Node ID '#9'" in failed.message
    assert failed.details["error_type"] == "invalid_prompt"
    assert failed.details["error"] == UNKNOWN_NODE["error"]
    assert failed.details["node_errors"] == {}


async def test_node_errors_are_kept_whole_and_named_in_the_message(rig: Rig) -> None:
    rig.comfy.reject_with = CHECKPOINT_MISSING
    await rig.driver.drive(request(), redelivered=False)
    [failed] = rig.sink.failed_events
    assert failed.code == ErrorCode.INVALID_WORKFLOW
    assert failed.details["node_errors"] == CHECKPOINT_MISSING["node_errors"]
    assert failed.details["error"] == CHECKPOINT_MISSING["error"]
    assert (
        "node 4 (CheckpointLoaderSimple): Value not in list: "
        "ckpt_name: 'v1-5-pruned-emaonly.safetensors' not in []"
    ) in failed.message


async def test_a_graph_no_backend_can_run_is_refused_before_anything_is_submitted(
    rig: Rig,
) -> None:
    rig.driver.pool.node_classes = frozenset({"EmptyImage", "ImageAddNoise", "SaveImage"})
    rig.comfy.object_info = {"EmptyImage": {"input": {"required": {}}}}
    await rig.driver.pool.check_all()
    await rig.driver.drive(request(), redelivered=False)
    [failed] = rig.sink.failed_events
    assert failed.code == ErrorCode.WORKFLOW_UNAVAILABLE
    assert "nodes ImageAddNoise, SaveImage are not installed on any backend" in failed.message
    assert failed.details["missing"] == {
        "comfyui-0": ["nodes ImageAddNoise, SaveImage are not installed"]
    }
    assert rig.comfy.submitted == []
    assert rig.sink.started_events == []


# -- cancel and deadline confirmed by the backend (issue 15 item 2) -----------------------------
def keep_late_outputs(rig: Rig) -> None:
    template = rig.driver.templates["noise"]
    manifest = template.manifest.model_copy(update={"late_outputs": "keep"})
    rig.driver.templates = {"noise": WorkflowTemplate(manifest, template.graph)}


async def test_a_cancel_is_cancelling_until_comfyui_confirms_the_interrupt(rig: Rig) -> None:
    rig.comfy.finish_on_submit = False
    task = asyncio.create_task(rig.driver.drive(request(), redelivered=False))
    await rig.comfy.wait_submissions(1)
    rig.driver.request_cancel(RUN)
    await task
    names = [e.event_name.value for e in rig.sink.published]
    assert names[-2:] == ["cancelling", "cancelled"]
    [cancelled] = rig.sink.cancelled_events
    assert cancelled.backend_outcome == BackendOutcome.INTERRUPTED
    assert cancelled.backend == "comfyui-0"


async def test_a_prompt_in_its_last_node_that_completes_is_recorded_as_completed_by_comfyui(
    rig: Rig,
) -> None:
    rig.comfy.finish_on_submit = False
    rig.comfy.on_interrupt = "finish"  # the interrupt has no effect during the last node
    task = asyncio.create_task(rig.driver.drive(request(), redelivered=False))
    await rig.comfy.wait_submissions(1)
    rig.driver.request_cancel(RUN)
    await rig.comfy.wait_until(lambda: bool(rig.comfy.interrupted))
    # The slot stays taken while ComfyUI is still running the prompt, however often the
    # driver looks.
    reads = rig.comfy.queue_reads
    await rig.comfy.wait_until(lambda: rig.comfy.queue_reads >= reads + 3)
    assert not task.done()
    assert rig.backend.in_flight == 1
    assert [e.event_name.value for e in rig.sink.published][-1] == "cancelling"
    rig.comfy.finish(RUN)
    await task
    assert rig.backend.in_flight == 0
    [cancelled] = rig.sink.cancelled_events
    assert cancelled.backend_outcome == BackendOutcome.COMPLETED
    assert "outputs were not kept" in cancelled.message
    assert rig.sink.generated_events == []


async def test_a_workflow_that_keeps_late_outputs_completes_with_the_late_cancel_recorded(
    rig: Rig,
) -> None:
    keep_late_outputs(rig)
    rig.comfy.finish_on_submit = False
    rig.comfy.on_interrupt = "finish"
    task = asyncio.create_task(rig.driver.drive(request(), redelivered=False))
    await rig.comfy.wait_submissions(1)
    rig.driver.request_cancel(RUN)
    await rig.comfy.wait_until(lambda: bool(rig.comfy.interrupted))
    rig.comfy.finish(RUN)
    await task
    assert rig.sink.cancelled_events == []
    [generated] = rig.sink.generated_events
    assert generated.late_stop is not None
    assert generated.late_stop.reason == StopReason.CANCEL


async def test_a_cancel_of_a_prompt_pending_in_comfyui_is_confirmed_as_dequeued(rig: Rig) -> None:
    rig.comfy.finish_on_submit = False
    task = asyncio.create_task(rig.driver.drive(request(), redelivered=False))
    await rig.comfy.wait_submissions(1)
    rig.comfy.pending.add(RUN)
    rig.driver.request_cancel(RUN)
    await task
    [cancelled] = rig.sink.cancelled_events
    assert cancelled.backend_outcome == BackendOutcome.DEQUEUED


async def test_a_deadline_in_the_last_node_fails_timeout_saying_comfyui_completed_it(
    rig: Rig,
) -> None:
    rig.comfy.finish_on_submit = False
    rig.comfy.on_interrupt = "finish"
    with_deadline(rig, 0.1)
    task = asyncio.create_task(rig.driver.drive(request(), redelivered=False))
    await rig.comfy.wait_until(lambda: bool(rig.comfy.interrupted))
    assert [e.event_name.value for e in rig.sink.published][-1] == "cancelling"
    assert rig.sink.cancelling_events[0].reason == StopReason.DEADLINE
    rig.comfy.finish(RUN)
    await task
    [failed] = rig.sink.failed_events
    assert failed.code == ErrorCode.TIMEOUT
    assert failed.details["backend_outcome"] == "completed"


async def test_a_stop_comfyui_never_confirms_ends_unconfirmed_after_the_limit(rig: Rig) -> None:
    rig.comfy.finish_on_submit = False
    rig.comfy.on_interrupt = "finish"  # and it never finishes
    rig.driver.poll = PollPolicy(
        initial_seconds=0.01, max_seconds=0.02, lost_grace_seconds=0.05, stop_confirm_seconds=0.1
    )
    task = asyncio.create_task(rig.driver.drive(request(), redelivered=False))
    await rig.comfy.wait_submissions(1)
    rig.driver.request_cancel(RUN)
    await task
    [cancelled] = rig.sink.cancelled_events
    assert cancelled.backend_outcome == BackendOutcome.UNCONFIRMED
    assert "may still be running" in cancelled.message


async def test_a_run_a_cancel_claimed_in_the_backlog_is_never_driven(rig: Rig) -> None:
    rig.ledger.claimed_by_cancel.add(RUN)
    await rig.driver.drive(request(), redelivered=False)
    assert rig.comfy.submitted == []
    assert rig.sink.started_events == []
    [cancelled] = rig.sink.cancelled_events
    assert cancelled.backend_outcome == BackendOutcome.NEVER_SUBMITTED


async def test_a_cancel_while_waiting_for_a_backend_slot_ends_it_at_once(rig: Rig) -> None:
    rig.backend.in_flight = rig.backend.max_in_flight  # every slot taken by other runs
    task = asyncio.create_task(rig.driver.drive(request(), redelivered=False))
    await rig.ledger.took.wait()
    assert rig.driver.request_cancel(RUN)
    await asyncio.wait_for(task, 1)
    [cancelled] = rig.sink.cancelled_events
    assert cancelled.backend_outcome == BackendOutcome.NEVER_SUBMITTED
    assert rig.comfy.submitted == []
    assert rig.backend.in_flight == rig.backend.max_in_flight  # nothing taken, nothing freed


# -- resubmissions are run events (issue 15 item 4) ---------------------------------------------
async def test_a_resubmission_is_published_with_backend_and_reason(rig: Rig) -> None:
    rig.comfy.forget_on_submit = True
    rig.comfy.finish_on_submit = True

    async def come_back() -> None:
        await rig.comfy.wait_submissions(2)
        rig.comfy.finish(RUN)

    helper = asyncio.create_task(come_back())
    await rig.driver.drive(request(), redelivered=False)
    await helper
    [resubmitted] = rig.sink.resubmitted_events
    assert resubmitted.attempt == 2
    assert resubmitted.backend == "comfyui-0"
    assert resubmitted.previous_backend == "comfyui-0"
    assert resubmitted.reason == ResubmitReason.BACKEND_LOST


async def test_a_stop_the_backend_could_not_hear_is_sent_again_once_it_answers(rig: Rig) -> None:
    rig.comfy.finish_on_submit = False
    task = asyncio.create_task(rig.driver.drive(request(), redelivered=False))
    await rig.comfy.wait_submissions(1)
    rig.comfy.down = True
    requests_before = rig.comfy.queue_reads
    rig.driver.request_cancel(RUN)
    await rig.comfy.wait_until(lambda: bool(rig.sink.cancelling_events))
    assert rig.comfy.interrupted == []  # it did not answer
    rig.comfy.down = False
    await task
    assert rig.comfy.interrupted == [RUN]
    assert rig.comfy.queue_reads > requests_before
    [cancelled] = rig.sink.cancelled_events
    assert cancelled.backend_outcome == BackendOutcome.INTERRUPTED
