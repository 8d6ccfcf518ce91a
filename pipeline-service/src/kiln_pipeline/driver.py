"""Driving one run through a ComfyUI backend: submit under the run id, follow, confirm, report.

Completion is ``executing`` with ``node: null`` for our prompt, always confirmed by
``/history`` (DESIGN §4); when the websocket is quiet or gone, ``/history`` is polled with
backoff, so a lost message can delay a run but never lose it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import RunFailed, RunGenerated, RunProgress, RunRequested, RunStarted
from kiln_contracts.records import Stage
from kiln_contracts.workflows import InvalidParamsError, resolve_params

from kiln_pipeline.comfy import PromptRejectedError
from kiln_pipeline.outputs import collect_outputs, failure_of
from kiln_pipeline.pool import Backend, BackendPool
from kiln_pipeline.ports import RunEventSink
from kiln_pipeline.templates import WorkflowTemplate

logger = logging.getLogger("kiln.pipeline")

PROGRESS_MIN_INTERVAL_SECONDS = 0.1
# JSON numbers above 2^53 lose precision in browsers; seeds stay below.
MAX_RANDOM_SEED = 2**53 - 1


@dataclass(frozen=True)
class PollPolicy:
    initial_seconds: float = 0.25
    max_seconds: float = 2.0


class RunDriver:
    def __init__(
        self,
        templates: dict[str, WorkflowTemplate],
        pool: BackendPool,
        sink: RunEventSink,
        poll: PollPolicy | None = None,
    ) -> None:
        self.templates = templates
        self.pool = pool
        self.sink = sink
        self.poll = poll or PollPolicy()

    async def fail(
        self, run_id: str, stage: Stage, code: ErrorCode, message: str, **details: Any
    ) -> None:
        logger.error("run failed at %s: %s: %s", stage.value, code.value, message)
        await self.sink.failed(
            RunFailed(run_id=run_id, stage=stage, code=code, message=message, details=details)
        )

    async def drive(self, request: RunRequested) -> None:
        run_id = request.run_id
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
        seed_param = params.get("seed")
        seed = seed_param if isinstance(seed_param, int) else secrets.randbelow(MAX_RANDOM_SEED)
        graph = template.build(run_id, params, request.input_text, seed)

        backend = await self.pool.acquire()
        try:
            await self._drive_on(backend, request, template, graph, seed)
        finally:
            await self.pool.release(backend)

    async def _drive_on(
        self,
        backend: Backend,
        request: RunRequested,
        template: WorkflowTemplate,
        graph: dict[str, Any],
        seed: int,
    ) -> None:
        run_id = request.run_id
        messages = backend.watcher.subscribe(run_id)
        try:
            await self.sink.started(
                RunStarted(
                    run_id=run_id,
                    backend=backend.name,
                    backend_url=backend.url,
                    seed=seed,
                    graph=graph,
                )
            )
            # A redelivered request may find its prompt already known to the backend: follow
            # it rather than submitting a second time.
            entry = await backend.client.history(run_id)
            if entry is None and run_id not in await backend.client.queued_prompt_ids():
                try:
                    await backend.client.submit(graph, run_id, backend.client_id)
                except PromptRejectedError as exc:
                    await self.fail(
                        run_id,
                        Stage.BACKEND,
                        ErrorCode.INVALID_WORKFLOW,
                        f"ComfyUI rejected the workflow: {exc.message}",
                        error_type=exc.error_type,
                        node_errors=exc.node_errors,
                    )
                    return
                logger.info("submitted to %s", backend.name)
            if entry is None:
                deadline = time.monotonic() + template.manifest.deadline_seconds
                entry = await self._await_history(backend, run_id, messages, deadline, len(graph))
            if entry is None:
                await self._give_up_on_timeout(backend, run_id, template.manifest.deadline_seconds)
                return
            await self._report(backend, run_id, entry)
        finally:
            backend.watcher.unsubscribe(run_id)

    async def _await_history(
        self,
        backend: Backend,
        run_id: str,
        messages: asyncio.Queue[dict[str, Any]],
        deadline: float,
        node_count: int,
    ) -> dict[str, Any] | None:
        interval = self.poll.initial_seconds
        executed: set[str] = set()
        last_progress = 0.0
        while (remaining := deadline - time.monotonic()) > 0:
            check_now = False
            try:
                message = await asyncio.wait_for(messages.get(), timeout=min(interval, remaining))
            except TimeoutError:
                check_now = True
                interval = min(interval * 2, self.poll.max_seconds)
            else:
                kind = message.get("type")
                data = message.get("data") or {}
                if kind == "executing":
                    node = data.get("node")
                    if node is None:
                        check_now = True
                    else:
                        executed.add(str(node))
                elif kind in ("execution_error", "execution_interrupted", "kiln.websocket_lost"):
                    check_now = True
                elif (
                    kind == "progress"
                    and time.monotonic() - last_progress >= PROGRESS_MIN_INTERVAL_SECONDS
                ):
                    last_progress = time.monotonic()
                    await self.sink.progress(
                        RunProgress(
                            run_id=run_id,
                            node=str(data.get("node")) if data.get("node") is not None else None,
                            value=float(data.get("value", 0)),
                            max=float(data.get("max", 1) or 1),
                            share=min(len(executed) / max(node_count, 1), 1.0),
                        )
                    )
            if check_now:
                entry = await backend.client.history(run_id)
                if entry is not None:
                    return entry
        return None

    async def _give_up_on_timeout(self, backend: Backend, run_id: str, limit: float) -> None:
        # Free the backend for others: dequeue if waiting, interrupt if running.
        try:
            await backend.client.delete_queued(run_id)
            await backend.client.interrupt(run_id)
        except Exception as exc:  # noqa: BLE001 - the timeout is reported whatever this does
            logger.warning("could not stop %s on %s: %s", run_id, backend.name, exc)
        await self.fail(
            run_id,
            Stage.BACKEND,
            ErrorCode.TIMEOUT,
            f"no result within {limit:g} s",
            backend=backend.name,
        )

    async def _report(self, backend: Backend, run_id: str, entry: dict[str, Any]) -> None:
        failure = failure_of(entry)
        if failure is not None:
            node = failure.get("node_type") or failure.get("node_id") or "?"
            text = failure.get("exception_message") or failure.get("kind")
            await self.fail(
                run_id,
                Stage.BACKEND,
                ErrorCode.BACKEND_ERROR,
                f"ComfyUI failed in node {node}: {text}",
                node_id=failure.get("node_id"),
                node_type=failure.get("node_type"),
                exception_type=failure.get("exception_type"),
            )
            return
        outputs = collect_outputs(entry)
        if not outputs:
            await self.fail(
                run_id, Stage.BACKEND, ErrorCode.NO_OUTPUTS, "ComfyUI finished but saved no file"
            )
            return
        logger.info("generated %d output(s) on %s", len(outputs), backend.name)
        await self.sink.generated(
            RunGenerated(
                run_id=run_id, backend=backend.name, backend_url=backend.url, outputs=outputs
            )
        )
