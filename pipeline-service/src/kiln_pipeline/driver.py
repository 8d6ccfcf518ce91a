"""Driving one run through a ComfyUI backend: submit under the run id, follow, confirm, report.

Completion is ``executing`` with ``node: null`` for our prompt, always confirmed by
``/history`` (docs/design.md §6); when the websocket is quiet or gone, the queue and ``/history`` are
polled with backoff, so a lost message can delay a run but never lose it. A prompt that is in
neither (ComfyUI restarted: both live in memory) is submitted once more under the same run id,
and the resubmission is a run event.

A cancel or a deadline is confirmed by the backend: the prompt is dequeued or interrupted, the
run is ``cancelling`` (an event), and the backend's slot stays taken until ComfyUI says the
prompt is gone. ComfyUI honours an interrupt only between nodes, so a prompt in its last node
finishes anyway: the record then says so (docs/design.md §4).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import (
    BackendOutcome,
    LateStop,
    ResubmitReason,
    RunCancelled,
    RunCancelling,
    RunFailed,
    RunGenerated,
    RunProgress,
    RunRequested,
    RunResubmitted,
    RunStarted,
    RunTextStage,
    StopReason,
    TextStageOutput,
)
from kiln_contracts.records import SafetyLevel, Stage, utc_now
from kiln_contracts.workflows import InvalidParamsError, resolve_params
from kiln_safety.verdicts import CheckPoint
from kiln_safety.verdicts import Verdict as SafetyVerdict

from kiln_pipeline.capabilities import problems, unavailable_reason
from kiln_pipeline.comfy import BackendUnavailableError, PromptRejectedError
from kiln_pipeline.outputs import collect_outputs, failure_of
from kiln_pipeline.pool import Backend, BackendPool, NoHealthyBackendError
from kiln_pipeline.ports import (
    CancelLedger,
    RunEventSink,
    TextGenerator,
    TextScreen,
    TextStageError,
)
from kiln_pipeline.templates import WorkflowTemplate
from kiln_pipeline.watcher import WEBSOCKET_LOST

logger = logging.getLogger("kiln.pipeline")

PROGRESS_MIN_INTERVAL_SECONDS = 0.1
# JSON numbers above 2^53 lose precision in browsers; seeds stay below.
MAX_RANDOM_SEED = 2**53 - 1

# Put into a run's message queue by a cancel request, to wake its driver at once.
CANCEL_REQUESTED = "kiln.cancel"

Message = dict[str, Any]


@dataclass(frozen=True)
class PollPolicy:
    initial_seconds: float = 0.25
    max_seconds: float = 2.0
    # A prompt in neither queue nor history for this long is lost, even without other signs of
    # a restart (a history written late must not cause a second submission).
    lost_grace_seconds: float = 5.0
    # A backend that does not answer for this long during a run has lost the run.
    backend_down_seconds: float = 10.0
    # How long a stopped prompt is followed for ComfyUI to confirm it is gone (a last node
    # runs to its end); after that the run is recorded with the stop unconfirmed.
    stop_confirm_seconds: float = 300.0


class Verdict(Enum):
    LOST = "lost"  # the backend no longer knows the prompt
    UNAVAILABLE = "unavailable"  # the backend failed before the prompt was submitted
    DONE = "done"  # reported: generated, failed, timed out or cancelled


@dataclass
class ActiveRun:
    """A run this pipeline instance is driving: where cancel requests find it."""

    run_id: str
    deadline_seconds: float = 0.0
    # Whether a backend may already know the prompt (a redelivery, or a submission that
    # failed halfway): then it is looked up before submitting, never submitted twice.
    maybe_known: bool = True
    # The workflow keeps outputs ComfyUI finished after a cancel or deadline (manifest).
    keep_late_outputs: bool = False
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    messages: asyncio.Queue[Message] | None = None

    def request_cancel(self) -> None:
        self.cancel_requested.set()
        if self.messages is not None:
            with contextlib.suppress(asyncio.QueueFull):
                self.messages.put_nowait({"type": CANCEL_REQUESTED, "data": {}})


@dataclass
class _Progress:
    """Which nodes are done, from ``execution_cached`` and ``executing`` transitions (ComfyUI
    sends ``executed`` only for nodes with UI output, so it cannot count nodes)."""

    node_count: int
    done: set[str] = field(default_factory=set)
    current: str | None = None
    last_sent: float = 0.0

    def share(self) -> float:
        return min(len(self.done) / max(self.node_count, 1), 1.0)


# Websocket messages after which a stopped prompt's state is worth reading again.
_STOP_SIGNALS = frozenset(
    {
        "execution_interrupted",
        "execution_error",
        "execution_success",
        WEBSOCKET_LOST,
    }
)


async def _next_signal(messages: asyncio.Queue[Message], until: float) -> None:
    """Wait until a message says the prompt may have ended, or until ``until``."""
    while (remaining := until - time.monotonic()) > 0:
        try:
            message = await asyncio.wait_for(messages.get(), timeout=remaining)
        except TimeoutError:
            return
        kind, data = message.get("type"), message.get("data") or {}
        if kind in _STOP_SIGNALS or (kind == "executing" and data.get("node") is None):
            return


def _outcome_of(entry: dict[str, Any]) -> BackendOutcome:
    failure = failure_of(entry)
    if failure is None:
        return BackendOutcome.COMPLETED
    if failure.get("kind") == "execution_interrupted":
        return BackendOutcome.INTERRUPTED
    return BackendOutcome.FAILED


class RunDriver:
    def __init__(
        self,
        templates: dict[str, WorkflowTemplate],
        pool: BackendPool,
        sink: RunEventSink,
        cancels: CancelLedger,
        poll: PollPolicy | None = None,
        llm: TextGenerator | None = None,
        *,
        screen: TextScreen,
    ) -> None:
        self.templates = templates
        self.screen = screen
        self.llm = llm
        self.pool = pool
        self.sink = sink
        self.cancels = cancels
        self.poll = poll or PollPolicy()
        self.active: dict[str, ActiveRun] = {}

    def request_cancel(self, run_id: str) -> bool:
        """Called for every cancel request any instance hears; True if this one drives the run."""
        run = self.active.get(run_id)
        if run is None:
            return False
        logger.info("cancel requested for a run in flight here")
        run.request_cancel()
        return True

    async def fail(
        self, run_id: str, stage: Stage, code: ErrorCode, message: str, **details: Any
    ) -> None:
        logger.error("run failed at %s: %s: %s", stage.value, code.value, message)
        await self.sink.publish(
            RunFailed(run_id=run_id, stage=stage, code=code, message=message, details=details)
        )

    async def drive(self, request: RunRequested, redelivered: bool = True) -> None:
        """Drive one requested run to its end. ``redelivered=False`` promises this is the
        request's first delivery, so no backend can know its prompt yet."""
        run_id = request.run_id
        # Registered before the ledger is asked, so a cancel is either in the ledger or heard.
        run = self.active.setdefault(run_id, ActiveRun(run_id, maybe_known=redelivered))
        try:
            await self._drive(request, run)
        finally:
            self.active.pop(run_id, None)

    async def _drive(self, requested: RunRequested, run: ActiveRun) -> None:
        run_id, request = requested.run_id, requested.request
        # First of all: take the run, unless a cancel took it while it waited in the backlog
        # (then the cancel's side has recorded it, or this says it again: the same message).
        if not await self.cancels.take(run_id):
            await self._report_cancelled(run_id, "cancelled while waiting in the backlog")
            return
        template = self.templates.get(request.workflow)
        if template is None:
            await self.fail(
                run_id,
                Stage.PIPELINE,
                ErrorCode.UNKNOWN_WORKFLOW,
                f"no workflow {request.workflow!r}",
            )
            return
        try:
            params = resolve_params(template.manifest, request.params)
        except InvalidParamsError as exc:
            await self.fail(
                run_id, Stage.PIPELINE, ErrorCode.INVALID_PARAMS, str(exc), problems=exc.problems
            )
            return
        if await self.cancels.requested(run_id):
            await self._report_cancelled(run_id, "cancelled before it reached a backend")
            return
        level = request.safety_level or SafetyLevel.KIDS  # a record without a level: the strictest
        text_outputs = await self._run_text_stages(run_id, request.input_text, template, level)
        if text_outputs is None:
            return
        if run.cancel_requested.is_set():
            await self._report_cancelled(run_id, "cancelled before it reached a backend")
            return
        prompt = text_outputs[-1].text if text_outputs else request.input_text
        seed_param = params.get("seed")
        seed = seed_param if isinstance(seed_param, int) else secrets.randbelow(MAX_RANDOM_SEED)
        graph = template.build(run_id, params, prompt, seed)
        # Placed only on a backend whose node classes and model files can run this graph;
        # refused here when none can (the gateway refuses such a workflow already, unless its
        # catalogue was older than the backends' state, or a parameter names another file).
        by_backend = {b.name: problems(graph, b.nodes) for b in self.pool.backends}
        reason = unavailable_reason(by_backend)
        if reason is not None:
            await self.fail(
                run_id,
                Stage.PIPELINE,
                ErrorCode.WORKFLOW_UNAVAILABLE,
                f"workflow {request.workflow!r} cannot run: {reason}",
                missing={name: list(found) for name, found in by_backend.items()},
            )
            return

        def can_run(backend: Backend) -> bool:
            return not problems(graph, backend.nodes)

        run.deadline_seconds = template.manifest.deadline_seconds
        run.keep_late_outputs = template.manifest.late_outputs == "keep"
        deadline = time.monotonic() + run.deadline_seconds

        resubmitted = False
        attempt = 0
        previous: Backend | None = None
        why_again = ResubmitReason.BACKEND_UNAVAILABLE
        avoid: frozenset[str] = frozenset()
        while True:
            try:
                backend = await self._acquire(run, deadline, avoid, can_run)
            except NoHealthyBackendError as exc:
                await self.fail(run_id, Stage.BACKEND, ErrorCode.BACKEND_UNAVAILABLE, str(exc))
                return
            if backend is None:  # cancelled while waiting for a slot: no backend has it
                await self._report_cancelled(
                    run_id,
                    "cancelled while waiting for a backend",
                    previous,
                    BackendOutcome.GONE if previous else BackendOutcome.NEVER_SUBMITTED,
                )
                return
            attempt += 1
            try:
                if previous is None:
                    await self.sink.publish(
                        RunStarted(
                            run_id=run_id,
                            backend=backend.name,
                            backend_url=backend.url,
                            seed=seed,
                            graph=graph,
                            text_stages=text_outputs,
                        )
                    )
                else:
                    await self.sink.publish(
                        RunResubmitted(
                            run_id=run_id,
                            attempt=attempt,
                            backend=backend.name,
                            previous_backend=previous.name,
                            reason=why_again,
                        )
                    )
                verdict = await self._drive_on(backend, run, graph, deadline)
            finally:
                await self.pool.release(backend)
            previous = backend
            if verdict is Verdict.DONE:
                return
            why_again = ResubmitReason.BACKEND_UNAVAILABLE
            if verdict is Verdict.LOST:
                why_again = ResubmitReason.BACKEND_LOST
                if resubmitted:
                    await self.fail(
                        run_id,
                        Stage.BACKEND,
                        ErrorCode.BACKEND_LOST,
                        f"the run was lost twice, last by {backend.name} "
                        "(restarted or stopped answering)",
                        backend=backend.name,
                    )
                    return
                resubmitted = True
                logger.warning("%s lost the run; submitting it once more", backend.name)
            # Lost or unavailable: another backend if there is one, this one once it is back.
            avoid = frozenset({backend.name})

    async def _acquire(
        self,
        run: ActiveRun,
        deadline: float,
        avoid: frozenset[str],
        can_run: Callable[[Backend], bool],
    ) -> Backend | None:
        """A backend slot, or None when the run is cancelled while it waits for one."""
        if run.cancel_requested.is_set():
            return None
        acquiring = asyncio.ensure_future(self.pool.acquire(deadline, avoid, can_run))
        cancelled = asyncio.ensure_future(run.cancel_requested.wait())
        try:
            await asyncio.wait({acquiring, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
            if not acquiring.done():
                acquiring.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await acquiring
        if acquiring.cancelled():
            return None
        backend = acquiring.result()  # a backend, or NoHealthyBackendError at the deadline
        if run.cancel_requested.is_set():  # both at once: the cancel wins, the slot goes back
            await self.pool.release(backend)
            return None
        return backend

    async def _run_text_stages(
        self, run_id: str, input_text: str, template: WorkflowTemplate, level: SafetyLevel
    ) -> list[TextStageOutput] | None:
        """Each stage's output, in order (each stage reads the previous one's), each published
        as soon as it is known; None when the run was failed instead."""
        stages = template.manifest.text_stages
        if not stages:
            return []
        if self.llm is None:
            await self.fail(
                run_id,
                Stage.PIPELINE,
                ErrorCode.WORKFLOW_UNAVAILABLE,
                f"workflow {template.manifest.name!r} has text stages but no chat endpoint is "
                "configured (set KILN_LLM_URL)",
            )
            return None
        outputs: list[TextStageOutput] = []
        text = input_text
        for index, stage in enumerate(stages):
            try:
                text = await self.llm.complete(stage.model, stage.system_prompt, text)
            except TextStageError as exc:
                await self.fail(
                    run_id,
                    Stage.PIPELINE,
                    ErrorCode.TEXT_STAGE_FAILED,
                    f"text stage {stage.name!r} failed: {exc}",
                    text_stage=stage.name,
                    index=index,
                )
                return None
            if not await self._screen_text_stage(run_id, stage.name, index, level, text):
                return None
            output = TextStageOutput(stage=stage.name, index=index, model=stage.model, text=text)
            await self.sink.publish(RunTextStage(run_id=run_id, output=output))
            outputs.append(output)
        return outputs

    async def _screen_text_stage(
        self, run_id: str, stage: str, index: int, level: SafetyLevel, text: str
    ) -> bool:
        """A text stage's output passes its level's checks before it is published or sent on;
        otherwise the run fails at stage ``safety`` (the refused text is not stored: it may be
        what a participant must not read; the rule ids say why)."""
        decision = await self.screen.screen_text(level, CheckPoint.TEXT_STAGE, text)
        if decision.verdict is SafetyVerdict.ALLOWED:
            return True
        blocked = decision.verdict is SafetyVerdict.BLOCKED
        checks = ", ".join(
            f"{r.check}={r.verdict.value}" + (f" ({', '.join(r.rules)})" if r.rules else "")
            for r in decision.results
        )
        await self.fail(
            run_id,
            Stage.SAFETY,
            ErrorCode.TEXT_STAGE_BLOCKED if blocked else ErrorCode.SAFETY_UNAVAILABLE,
            f"safety text_stage check of stage {stage!r} at level {level.value} "
            f"(policy {decision.policy_version}): {checks}",
            text_stage=stage,
            index=index,
            rules=list(decision.rules),
            categories=list(decision.categories),
        )
        return False

    async def _drive_on(
        self,
        backend: Backend,
        run: ActiveRun,
        graph: dict[str, Any],
        deadline: float,
    ) -> Verdict:
        run_id = run.run_id
        messages = backend.watcher.subscribe(run_id)
        run.messages = messages
        try:
            # A redelivered request may find its prompt already known to the backend: follow
            # it rather than submitting a second time.
            try:
                queued, entry = False, None
                if run.maybe_known:
                    queued = run_id in await backend.client.queued_prompt_ids()
                    entry = None if queued else await backend.client.history(run_id)
                run.maybe_known = True
                if run.cancel_requested.is_set():
                    if queued or entry is not None:
                        return await self._stop(backend, run, messages, StopReason.CANCEL)
                    await self._report_cancelled(run_id, f"cancelled before {backend.name} had it")
                    return Verdict.DONE
                if entry is None and not queued:
                    await backend.client.submit(graph, run_id, backend.client_id)
                    logger.info("submitted to %s", backend.name)
            except PromptRejectedError as exc:
                await self.fail(
                    run_id,
                    Stage.BACKEND,
                    ErrorCode.INVALID_WORKFLOW,
                    f"ComfyUI rejected the workflow: {exc.summary()}",
                    backend=backend.name,
                    error_type=exc.error_type,
                    error=exc.error,
                    node_errors=exc.node_errors,
                )
                return Verdict.DONE
            except BackendUnavailableError as exc:
                await self.pool.mark_unhealthy(backend, str(exc))
                return Verdict.UNAVAILABLE
            if entry is None:
                outcome = await self._follow(backend, run, messages, deadline, len(graph))
                if isinstance(outcome, Verdict):
                    return outcome
                entry = outcome
            await self._report(backend, run_id, entry)
            return Verdict.DONE
        finally:
            run.messages = None
            backend.watcher.unsubscribe(run_id)

    async def _follow(
        self,
        backend: Backend,
        run: ActiveRun,
        messages: asyncio.Queue[Message],
        deadline: float,
        node_count: int,
    ) -> dict[str, Any] | Verdict:
        """The history entry once the prompt is finished, or what stopped us waiting for it."""
        run_id = run.run_id
        progress = _Progress(node_count)
        interval = self.poll.initial_seconds
        next_check = time.monotonic() + interval
        finished_seen = False  # executing node:null arrived: a missing history is only late
        unreachable_since: float | None = None
        missing_since: float | None = None
        while (now := time.monotonic()) < deadline:
            check_now = now >= next_check
            if not check_now:
                try:
                    message = await asyncio.wait_for(
                        messages.get(), timeout=min(next_check, deadline) - now
                    )
                except TimeoutError:
                    continue
                kind = message.get("type")
                data = message.get("data") or {}
                if kind == CANCEL_REQUESTED:
                    return await self._stop(backend, run, messages, StopReason.CANCEL)
                if kind == "executing" and data.get("node") is None:
                    finished_seen = True
                    check_now = True
                elif kind in ("execution_error", "execution_interrupted", WEBSOCKET_LOST):
                    check_now = True
                else:
                    await self._on_progress_message(run_id, progress, kind, data)
                if not check_now:
                    continue
            if run.cancel_requested.is_set():
                return await self._stop(backend, run, messages, StopReason.CANCEL)
            interval = min(interval * 2, self.poll.max_seconds)
            next_check = time.monotonic() + interval
            try:
                if finished_seen:
                    # ComfyUI writes history before it says node:null; the queue can wait.
                    entry = await backend.client.history(run_id)
                    queued = False
                else:
                    # Queue before history: a prompt finishing between the two calls is then
                    # seen in history, never in neither.
                    queued = run_id in await backend.client.queued_prompt_ids()
                    entry = None if queued else await backend.client.history(run_id)
            except BackendUnavailableError as exc:
                await self.pool.mark_unhealthy(backend, str(exc))
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since >= self.poll.backend_down_seconds:
                    logger.warning("%s has not answered for a while: %s", backend.name, exc)
                    return Verdict.LOST
                continue
            if entry is not None:
                return entry
            if queued:
                missing_since = None
            elif unreachable_since is not None:
                # It did not answer and now has no trace of the prompt: it restarted.
                return Verdict.LOST
            else:
                # In neither (or finished without history): late history gets a grace period,
                # a restart that wiped both does not end it.
                missing_since = missing_since or time.monotonic()
                if time.monotonic() - missing_since >= self.poll.lost_grace_seconds:
                    return Verdict.LOST
            unreachable_since = None
        return await self._stop(backend, run, messages, StopReason.DEADLINE)

    async def _on_progress_message(
        self, run_id: str, progress: _Progress, kind: object, data: dict[str, Any]
    ) -> None:
        node = data.get("node")
        if kind == "execution_cached":
            progress.done.update(str(n) for n in data.get("nodes") or [])
        elif kind == "executing" and node is not None:
            if progress.current is not None:
                progress.done.add(progress.current)
            progress.current = str(node)
        elif kind == "executed" and node is not None:
            progress.done.add(str(node))
        elif kind != "progress":
            return
        now = time.monotonic()
        current = str(node) if node is not None else progress.current
        if current is None or now - progress.last_sent < PROGRESS_MIN_INTERVAL_SECONDS:
            return  # nothing running yet (cached nodes only), or too soon
        progress.last_sent = now
        is_progress = kind == "progress"
        await self.sink.progress(
            RunProgress(
                run_id=run_id,
                node=current,
                value=float(data.get("value", 0)) if is_progress else 0.0,
                max=float(data.get("max", 1) or 1) if is_progress else 1.0,
                share=progress.share(),
            )
        )

    async def _stop(
        self,
        backend: Backend,
        run: ActiveRun,
        messages: asyncio.Queue[Message],
        why: StopReason,
    ) -> Verdict:
        """Ask the backend to stop the prompt, say the run is ``cancelling``, follow the prompt
        (the caller keeps the backend's slot) until ComfyUI confirms it is gone, and record
        what the backend did."""
        run_id = run.run_id
        requested_at = utc_now()
        logger.info("stopping the prompt on %s (%s)", backend.name, why.value)
        await self.sink.publish(RunCancelling(run_id=run_id, reason=why, backend=backend.name))
        outcome, entry = await self._confirm_stopped(backend, run_id, messages)
        await self._report_stopped(backend, run, why, requested_at, outcome, entry)
        return Verdict.DONE

    async def _stop_on(self, backend: Backend, run_id: str) -> bool:
        """Dequeue the prompt if it is pending, interrupt it if it is running (only this
        prompt); True if it was pending. Raises BackendUnavailableError."""
        _, pending = await backend.client.queue()
        await backend.client.delete_queued(run_id)
        await backend.client.interrupt(run_id)
        return run_id in pending

    async def _confirm_stopped(
        self, backend: Backend, run_id: str, messages: asyncio.Queue[Message]
    ) -> tuple[BackendOutcome, dict[str, Any] | None]:
        """Stop the prompt (again and again while the backend does not answer) and say what
        became of it, as the backend says: its history entry, or gone from queue and history;
        unconfirmed after ``stop_confirm_seconds``."""
        limit = time.monotonic() + self.poll.stop_confirm_seconds
        interval = self.poll.initial_seconds
        missing_since: float | None = None
        stopped, was_pending = False, False
        while True:
            try:
                if not stopped:
                    was_pending = await self._stop_on(backend, run_id)
                    stopped = True
                # Queue before history, as when following: never "in neither" by a race.
                queued = run_id in await backend.client.queued_prompt_ids()
                entry = None if queued else await backend.client.history(run_id)
            except BackendUnavailableError as exc:
                if not stopped:
                    logger.warning("could not stop the prompt on %s yet: %s", backend.name, exc)
                await self.pool.mark_unhealthy(backend, str(exc))
                missing_since = None
            else:
                if entry is not None:
                    return _outcome_of(entry), entry
                if queued:
                    missing_since = None
                elif was_pending:
                    return BackendOutcome.DEQUEUED, None  # it never ran: no history to wait for
                else:
                    # A history written late gets the same grace as when following.
                    missing_since = missing_since or time.monotonic()
                    if time.monotonic() - missing_since >= self.poll.lost_grace_seconds:
                        return BackendOutcome.GONE, None
            if time.monotonic() >= limit:
                return BackendOutcome.UNCONFIRMED, None
            await _next_signal(messages, min(time.monotonic() + interval, limit))
            interval = min(interval * 2, self.poll.max_seconds)

    async def _report_stopped(
        self,
        backend: Backend,
        run: ActiveRun,
        why: StopReason,
        requested_at: Any,
        outcome: BackendOutcome,
        entry: dict[str, Any] | None,
    ) -> None:
        run_id, name = run.run_id, backend.name
        if outcome is BackendOutcome.COMPLETED and entry is not None and run.keep_late_outputs:
            outputs = collect_outputs(entry)
            if outputs:
                logger.warning(
                    "%s completed the run after its %s; the workflow keeps such outputs",
                    name,
                    why.value,
                )
                await self.sink.publish(
                    RunGenerated(
                        run_id=run_id,
                        backend=name,
                        backend_url=backend.url,
                        outputs=outputs,
                        late_stop=LateStop(reason=why, requested_at=requested_at),
                    )
                )
                return
        what = {
            BackendOutcome.DEQUEUED: f"removed from {name}'s queue before it ran",
            BackendOutcome.INTERRUPTED: f"interrupted on {name}",
            BackendOutcome.COMPLETED: f"{name} completed it after the {why.value} "
            "(ComfyUI interrupts only between nodes); its outputs were not kept",
            BackendOutcome.FAILED: f"{name} ended it with an error",
            BackendOutcome.GONE: f"{name} no longer knows the prompt",
            BackendOutcome.UNCONFIRMED: f"{name} did not confirm the stop within "
            f"{self.poll.stop_confirm_seconds:g} s; it may still be running there",
        }.get(outcome, outcome.value)
        if why is StopReason.CANCEL:
            await self._report_cancelled(run_id, f"cancelled: {what}", backend, outcome)
            return
        await self.fail(
            run_id,
            Stage.BACKEND,
            ErrorCode.TIMEOUT,
            f"no result within the workflow's deadline of {run.deadline_seconds:g} s; {what}",
            backend=name,
            deadline_seconds=run.deadline_seconds,
            backend_outcome=outcome.value,
        )

    async def _report_cancelled(
        self,
        run_id: str,
        how: str,
        backend: Backend | None = None,
        outcome: BackendOutcome = BackendOutcome.NEVER_SUBMITTED,
    ) -> None:
        logger.info("run %s", how)
        await self.sink.publish(
            RunCancelled(
                run_id=run_id,
                backend=backend.name if backend else None,
                backend_outcome=outcome,
                message=how,
            )
        )

    async def _report(self, backend: Backend, run_id: str, entry: dict[str, Any]) -> None:
        failure = failure_of(entry)
        if failure is not None:
            node_type = failure.get("node_type")
            node_id = failure.get("node_id")
            text = failure.get("exception_message") or failure.get("kind")
            await self.fail(
                run_id,
                Stage.BACKEND,
                ErrorCode.BACKEND_ERROR,
                f"ComfyUI failed in node {node_id} ({node_type or '?'}): "
                f"{failure.get('exception_type') or 'error'}: {text}",
                backend=backend.name,
                node_id=node_id,
                node_type=node_type,
                exception_type=failure.get("exception_type"),
                exception_message=failure.get("exception_message"),
            )
            return
        outputs = collect_outputs(entry)
        if not outputs:
            await self.fail(
                run_id, Stage.BACKEND, ErrorCode.NO_OUTPUTS, "ComfyUI finished but saved no file"
            )
            return
        logger.info("generated %d output(s) on %s", len(outputs), backend.name)
        await self.sink.publish(
            RunGenerated(
                run_id=run_id, backend=backend.name, backend_url=backend.url, outputs=outputs
            )
        )
