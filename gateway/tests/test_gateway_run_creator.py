"""RunCreator with fakes behind its ports: the run exists before it is queued, a failure to
queue is recorded on the run, and an idempotent retry never makes a second run."""

from __future__ import annotations

from dataclasses import dataclass

import nats.errors
import nats.js.errors
import pytest
from gateway_fakes import Allow, FakeKeyValue, FakeRunQueue, FakeRunRecords, FakeWorkflows
from kiln_common.proxy import UpstreamError
from kiln_contracts.errors import ErrorCode, MappedError
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunStatus, SafetyLevel, Stage
from kiln_gateway.errors import GatewayError, GatewayErrorCode
from kiln_gateway.idempotency import IdempotencyStore
from kiln_gateway.models import CreateRunRequest
from kiln_gateway.runs import Origin, RunCreator
from kiln_safety.screen import Screen, build_screen
from kiln_safety.verdicts import CheckResult

pytestmark = pytest.mark.anyio

ORIGIN = Origin(device_id="device-1", session_id="session-1", safety_level=SafetyLevel.KIDS)
BODY = CreateRunRequest(workflow="noise", input_text="a red kite", params={"width": 64})


class Refuse:
    async def check(self, *args: object) -> None:
        raise GatewayError(GatewayErrorCode.RATE_LIMITED, "slow down", 429)


@dataclass
class Parts:
    records: FakeRunRecords
    queue: FakeRunQueue
    kv: FakeKeyValue
    rate: Allow
    depth: Allow
    creator: RunCreator


@pytest.fixture
def parts() -> Parts:
    records, queue, kv, rate, depth = (
        FakeRunRecords(),
        FakeRunQueue(),
        FakeKeyValue(),
        Allow(),
        Allow(),
    )
    creator = RunCreator(
        FakeWorkflows(),
        records,
        queue,
        100,
        IdempotencyStore(kv, wait_seconds=0.2),
        rate,
        depth,
        build_screen(None),
    )
    return Parts(records, queue, kv, rate, depth, creator)


async def test_a_run_is_recorded_then_queued_with_the_sessions_safety_level(parts: Parts) -> None:
    accepted = await parts.creator.create(BODY, ORIGIN)

    assert accepted.status is RunStatus.QUEUED
    assert accepted.links.self == f"/api/runs/{accepted.run_id}"
    assert parts.records.creates == [accepted.run_id]
    record = parts.records.records[accepted.run_id]
    assert record.request.device_id == "device-1"
    assert record.request.session_id == "session-1"
    assert record.request.safety_level is SafetyLevel.KIDS
    assert record.request.params["width"] == 64
    [requested] = parts.queue.requested
    assert requested.run_id == accepted.run_id
    assert requested.request.workflow == "noise"
    assert requested.request.input_text == "a red kite"
    assert requested.request.safety_level is SafetyLevel.KIDS
    assert parts.rate.checks == [("device-1",)]
    assert len(parts.depth.checks) == 1
    assert parts.records.failures == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (CreateRunRequest(workflow="nope", input_text="x"), ErrorCode.UNKNOWN_WORKFLOW),
        (CreateRunRequest(workflow="noise", input_text="x" * 101), ErrorCode.INVALID_REQUEST),
        (CreateRunRequest(workflow="noise", input_text="a\x00b"), ErrorCode.INVALID_REQUEST),
        (
            CreateRunRequest(workflow="noise", input_text="x", params={"width": 1}),
            ErrorCode.INVALID_PARAMS,
        ),
    ],
)
async def test_an_invalid_request_creates_and_queues_nothing(
    parts: Parts, body: CreateRunRequest, code: ErrorCode
) -> None:
    with pytest.raises(MappedError) as raised:  # each answers with its own code and status
        await parts.creator.create(body, ORIGIN)
    assert (raised.value.code, raised.value.status_code) == (code.value, 422)
    assert parts.records.creates == []
    assert parts.queue.requested == []


async def test_media_unavailable_queues_nothing_and_passes_the_status_on(parts: Parts) -> None:
    parts.records.create_error = UpstreamError(
        ErrorCode.UPSTREAM_UNAVAILABLE, "media-service is unavailable", 503
    )
    with pytest.raises(UpstreamError) as raised:
        await parts.creator.create(BODY, ORIGIN)
    assert (raised.value.code, raised.value.status_code) == ("upstream_unavailable", 503)
    assert parts.queue.requested == []
    assert parts.records.failures == []  # no record exists to mark


async def test_media_timing_out_marks_the_run_failed_in_case_it_was_created(
    parts: Parts,
) -> None:
    parts.records.create_error = UpstreamError(
        ErrorCode.UPSTREAM_TIMEOUT, "media-service did not answer in time", 504
    )
    with pytest.raises(UpstreamError) as raised:
        await parts.creator.create(BODY, ORIGIN)
    assert raised.value.status_code == 504
    assert parts.queue.requested == []
    [(run_id, failure)] = parts.records.failures
    assert run_id == parts.records.creates[0]
    assert (failure.stage, failure.code) == (Stage.GATEWAY.value, ErrorCode.UPSTREAM_TIMEOUT.value)


async def test_a_queue_failure_is_recorded_on_the_run_before_the_client_hears_503(
    parts: Parts,
) -> None:
    parts.queue.error = TimeoutError("nats: timeout")
    with pytest.raises(GatewayError) as raised:
        await parts.creator.create(BODY, ORIGIN)
    assert (raised.value.code, raised.value.status_code) == ("queue_unavailable", 503)
    [run_id] = parts.records.creates
    assert run_id in raised.value.detail  # the client learns which run was recorded failed
    [(failed_id, failure)] = parts.records.failures
    assert failed_id == run_id
    assert failure.stage is Stage.GATEWAY
    assert failure.code is ErrorCode.QUEUE_UNAVAILABLE
    assert "TimeoutError" in failure.message
    assert failure.retryable is True


async def test_a_queue_failure_still_answers_503_when_the_failure_cannot_be_recorded(
    parts: Parts,
) -> None:
    parts.queue.error = TimeoutError("nats: timeout")
    parts.records.fail_error = UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, "down", 503)
    with pytest.raises(GatewayError) as raised:
        await parts.creator.create(BODY, ORIGIN)
    assert (raised.value.code, raised.value.status_code) == ("queue_unavailable", 503)


async def test_an_idempotent_repeat_gets_the_first_answer_and_makes_no_second_run(
    parts: Parts,
) -> None:
    first = await parts.creator.create(BODY, ORIGIN, "retry-1")
    again = await parts.creator.create(BODY, ORIGIN, "retry-1")

    assert again == first
    assert parts.records.creates == [first.run_id]
    assert [r.run_id for r in parts.queue.requested] == [first.run_id]
    other = await parts.creator.create(BODY, ORIGIN, "retry-2")
    assert other.run_id != first.run_id


async def test_an_idempotency_key_reused_with_another_body_is_a_409(parts: Parts) -> None:
    await parts.creator.create(BODY, ORIGIN, "retry-1")
    changed = BODY.model_copy(update={"input_text": "a blue kite"})
    with pytest.raises(GatewayError) as raised:
        await parts.creator.create(changed, ORIGIN, "retry-1")
    assert (raised.value.code, raised.value.status_code) == ("idempotency_key_reused", 409)
    assert len(parts.records.creates) == 1


async def test_a_retry_after_a_queue_failure_resumes_the_same_run(parts: Parts) -> None:
    parts.queue.error = TimeoutError("nats: timeout")
    with pytest.raises(GatewayError):
        await parts.creator.create(BODY, ORIGIN, "retry-1")
    [run_id] = parts.records.creates
    parts.queue.error = None

    # Another device's cookie on the retry does not change whose run it is.
    elsewhere = Origin(device_id="device-2", session_id=None, safety_level=SafetyLevel.YOUTH)
    resumed = await parts.creator.create(BODY, elsewhere, "retry-1")

    assert resumed.run_id == run_id
    assert parts.records.creates == [run_id, run_id]  # media's create is idempotent per id
    [requested] = parts.queue.requested
    assert requested.run_id == run_id
    assert requested.request.device_id == "device-1"
    assert requested.request.safety_level is SafetyLevel.KIDS


async def test_a_resumed_run_that_went_on_meanwhile_is_reported_not_requeued(
    parts: Parts,
) -> None:
    parts.queue.error = TimeoutError("nats: timeout")
    with pytest.raises(GatewayError):
        await parts.creator.create(BODY, ORIGIN, "retry-1")
    [run_id] = parts.records.creates
    parts.records.move_on(run_id, RunStatus.FAILED)
    parts.queue.error = None

    resumed = await parts.creator.create(BODY, ORIGIN, "retry-1")

    assert (resumed.run_id, resumed.status) == (run_id, RunStatus.FAILED)
    assert parts.queue.requested == []


async def test_an_unavailable_idempotency_store_creates_nothing(parts: Parts) -> None:
    parts.kv.error = TimeoutError("nats: timeout")
    with pytest.raises(GatewayError) as raised:
        await parts.creator.create(BODY, ORIGIN, "retry-1")
    assert (raised.value.code, raised.value.status_code) == ("queue_unavailable", 503)
    assert parts.records.creates == []
    assert parts.queue.requested == []


async def test_a_refused_limit_creates_and_queues_nothing(parts: Parts) -> None:
    parts.creator.rate_limiter = Refuse()
    with pytest.raises(GatewayError) as raised:
        await parts.creator.create(BODY, ORIGIN)
    assert raised.value.status_code == 429
    assert parts.records.creates == []
    assert parts.queue.requested == []


async def test_cancel_sends_a_cancel_for_a_run_a_pipeline_has_taken(parts: Parts) -> None:
    accepted = await parts.creator.create(BODY, ORIGIN)
    parts.queue.taken_by_pipeline.add(accepted.run_id)
    answer = await parts.creator.cancel(accepted.run_id)
    assert answer.status is RunStatus.QUEUED
    assert [c.run_id for c in parts.queue.cancels] == [accepted.run_id]
    assert parts.queue.cancelled_waiting == []


async def test_cancel_of_a_run_waiting_in_the_backlog_is_final_at_once(parts: Parts) -> None:
    accepted = await parts.creator.create(BODY, ORIGIN)
    answer = await parts.creator.cancel(accepted.run_id)
    assert answer.status is RunStatus.CANCELLED
    assert parts.queue.cancelled_waiting == [accepted.run_id]
    assert parts.queue.cancels == []  # no pipeline has it: nothing to ask


async def test_cancel_of_a_finished_run_is_a_409_and_sends_nothing(parts: Parts) -> None:
    accepted = await parts.creator.create(BODY, ORIGIN)
    parts.records.move_on(accepted.run_id, RunStatus.COMPLETED)
    with pytest.raises(GatewayError) as raised:
        await parts.creator.cancel(accepted.run_id)
    assert (raised.value.code, raised.value.status_code) == ("run_finished", 409)
    assert parts.queue.cancels == []


async def test_cancel_that_cannot_be_sent_is_a_503(parts: Parts) -> None:
    accepted = await parts.creator.create(BODY, ORIGIN)
    parts.queue.error = TimeoutError("nats: timeout")
    with pytest.raises(GatewayError) as raised:
        await parts.creator.cancel(accepted.run_id)
    assert (raised.value.code, raised.value.status_code) == ("queue_unavailable", 503)


async def test_cancel_of_an_unknown_run_is_a_404(parts: Parts) -> None:
    with pytest.raises(UpstreamError) as raised:
        await parts.creator.cancel(new_run_id())
    assert raised.value.status_code == 404


@pytest.mark.parametrize(
    "outage",
    [
        nats.errors.TimeoutError(),
        nats.errors.ConnectionClosedError(),
        nats.errors.NoServersError(),
        nats.js.errors.ServiceUnavailableError(),
        ConnectionResetError("reset by peer"),
    ],
)
async def test_every_kind_of_nats_outage_is_a_503_with_the_run_failed(
    parts: Parts, outage: Exception
) -> None:
    parts.queue.error = outage
    with pytest.raises(GatewayError) as raised:
        await parts.creator.create(BODY, ORIGIN)
    assert (raised.value.code, raised.value.status_code) == ("queue_unavailable", 503)
    [(_, failure)] = parts.records.failures
    assert failure.code is ErrorCode.QUEUE_UNAVAILABLE


async def test_a_bug_while_queueing_is_no_outage_but_the_run_is_still_failed(
    parts: Parts,
) -> None:
    parts.queue.error = TypeError("a programming error")
    with pytest.raises(TypeError):  # the handler answers a logged 500, not 503 "unavailable"
        await parts.creator.create(BODY, ORIGIN)
    [run_id] = parts.records.creates
    [(failed_id, failure)] = parts.records.failures  # nothing waits forever for the queue
    assert failed_id == run_id
    assert failure.code is ErrorCode.INTERNAL
    assert "TypeError" in failure.message


async def test_a_bug_in_the_idempotency_store_is_no_outage(parts: Parts) -> None:
    parts.kv.error = TypeError("a programming error")
    with pytest.raises(TypeError):
        await parts.creator.create(BODY, ORIGIN, "retry-1")
    assert parts.records.creates == []


async def test_a_bug_sending_a_cancel_is_no_outage(parts: Parts) -> None:
    accepted = await parts.creator.create(BODY, ORIGIN)
    parts.queue.error = TypeError("a programming error")
    with pytest.raises(TypeError):
        await parts.creator.cancel(accepted.run_id)


async def test_a_blocked_prompt_is_recorded_failed_and_never_queued(parts: Parts) -> None:
    body = CreateRunRequest(workflow="noise", input_text="a dragon that K-I-L-L-S people")

    with pytest.raises(GatewayError) as caught:
        await parts.creator.create(body, ORIGIN)

    assert caught.value.status_code == 422
    assert caught.value.code == ErrorCode.PROMPT_BLOCKED
    assert "kill" not in caught.value.detail.lower()
    assert parts.queue.requested == []
    [(run_id, failure)] = parts.records.failures
    assert parts.records.creates == [run_id]
    assert run_id in caught.value.detail
    assert failure.stage is Stage.SAFETY
    assert failure.code is ErrorCode.PROMPT_BLOCKED
    assert "terms=blocked (violence." in failure.message
    assert "kill" not in failure.message.lower()


async def test_a_personal_email_is_refused_at_kids_level(parts: Parts) -> None:
    body = CreateRunRequest(workflow="noise", input_text="send it to lena.schmidt@example.org")
    with pytest.raises(GatewayError) as caught:
        await parts.creator.create(body, ORIGIN)
    assert caught.value.code == ErrorCode.PROMPT_BLOCKED
    assert "personal_data.email" in parts.records.failures[0][1].message


async def test_the_level_decides_what_is_refused(parts: Parts) -> None:
    body = CreateRunRequest(workflow="noise", input_text="a knight with a sword and a gun")
    with pytest.raises(GatewayError):
        await parts.creator.create(body, ORIGIN)
    adult = Origin(device_id="device-1", session_id=None, safety_level=SafetyLevel.ADULT)
    accepted = await parts.creator.create(body, adult)
    assert accepted.status is RunStatus.QUEUED


class Broken:
    name = "terms"

    async def check_text(self, text: str) -> CheckResult:
        raise ConnectionError("judge unreachable")


async def test_a_check_without_an_answer_refuses_with_503_never_allows(parts: Parts) -> None:
    screen = build_screen(None)
    broken = Screen(screen.policy, {key: [Broken()] for key in screen.checks})
    parts.creator.screen = broken

    with pytest.raises(GatewayError) as caught:
        await parts.creator.create(BODY, ORIGIN)

    assert caught.value.status_code == 503
    assert caught.value.code == ErrorCode.SAFETY_UNAVAILABLE
    assert parts.queue.requested == []
    assert parts.records.failures[0][1].code is ErrorCode.SAFETY_UNAVAILABLE


async def test_a_refusal_still_answers_when_its_record_cannot_be_written(parts: Parts) -> None:
    parts.records.fail_error = UpstreamError(
        ErrorCode.UPSTREAM_UNAVAILABLE, "media-service is down", 503
    )
    body = CreateRunRequest(workflow="noise", input_text="sieg heil")
    with pytest.raises(GatewayError) as caught:
        await parts.creator.create(body, ORIGIN)
    assert caught.value.code == ErrorCode.PROMPT_BLOCKED
    assert parts.queue.requested == []
