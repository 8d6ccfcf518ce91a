"""Creating a run: validate, mint the one id, have media-service create the record, queue it.

Order matters: the run exists on storage before it is queued, and if queueing fails the run is
recorded ``failed`` with a code before the client hears 503, so nothing ever waits forever.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kiln_common.logging import run_context
from kiln_common.metrics import RUNS_BY_STATE
from kiln_common.nats import NATS_ERRORS
from kiln_common.proxy import UpstreamError
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import RunCancel, RunRequested
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunError, RunRequest, RunStatus, SafetyLevel, Stage
from kiln_contracts.workflows import resolve_params
from kiln_safety.screen import Decision
from kiln_safety.verdicts import CheckPoint, Verdict

from kiln_gateway.errors import GatewayError
from kiln_gateway.idempotency import IdempotencyStore, body_hash
from kiln_gateway.models import CreateRunRequest, RunAccepted, RunLinks
from kiln_gateway.ports import (
    DeviceRateLimit,
    IdempotencyClaims,
    PromptScreen,
    QueueDepthLimit,
    RunQueue,
    RunRecords,
    Workflows,
)

logger = logging.getLogger("kiln.gateway.runs")


@dataclass(frozen=True)
class Origin:
    """Where a run request comes from; the safety level is the session's, never the client's."""

    device_id: str
    session_id: str | None
    safety_level: SafetyLevel


class RunCreator:
    def __init__(
        self,
        catalog: Workflows,
        records: RunRecords,
        queue: RunQueue,
        max_input_chars: int,
        idempotency: IdempotencyClaims,
        rate_limiter: DeviceRateLimit,
        queue_guard: QueueDepthLimit,
        screen: PromptScreen,
    ) -> None:
        self.screen = screen
        self.catalog = catalog
        self.records = records
        self.queue = queue
        self.max_input_chars = max_input_chars
        self.idempotency = idempotency
        self.rate_limiter = rate_limiter
        self.queue_guard = queue_guard

    async def create(
        self, body: CreateRunRequest, origin: Origin, idempotency_key: str | None = None
    ) -> RunAccepted:
        request = await self._validate(body, origin)
        await self._screen_input(request, origin)
        if idempotency_key is None:
            return await self._create(request, origin, new_run_id())
        key = IdempotencyStore.storage_key("runs", idempotency_key)
        hashed = body_hash(body.model_dump(mode="json"))
        try:
            claim = await self.idempotency.claim(key, hashed, new_run_id(), request)
        except NATS_ERRORS as exc:
            logger.error("idempotency store unavailable: %s", exc)
            raise GatewayError(
                ErrorCode.QUEUE_UNAVAILABLE,
                "the idempotency store is unavailable; nothing was created, try again",
                503,
            ) from exc
        if claim.accepted is not None:
            logger.info("idempotent repeat answered with run %s", claim.run_id)
            return claim.accepted
        request = claim.request or request
        try:
            accepted = await self._create(request, origin, claim.run_id)
        except BaseException:
            try:
                await self.idempotency.abandon(key, hashed, claim.run_id, request)
            except Exception:
                logger.exception(
                    "could not mark run %s's idempotency key for resumption", claim.run_id
                )
            raise
        try:
            await self.idempotency.complete(key, hashed, accepted)
        except Exception:
            # The run exists and is queued; a retry with this key may now make a second one.
            logger.exception(
                "run %s created but its idempotency key was not recorded", accepted.run_id
            )
        return accepted

    async def _validate(self, body: CreateRunRequest, origin: Origin) -> RunRequest:
        manifest = await self.catalog.get(body.workflow)
        if manifest is None:
            raise GatewayError(
                ErrorCode.UNKNOWN_WORKFLOW, f"no workflow named {body.workflow!r}", 422
            )
        if manifest.unavailable_reason:
            raise GatewayError(ErrorCode.WORKFLOW_UNAVAILABLE, manifest.unavailable_reason, 422)
        if len(body.input_text) > self.max_input_chars:
            raise GatewayError(
                ErrorCode.INVALID_REQUEST,
                f"input_text is longer than {self.max_input_chars} characters",
                422,
            )
        if "\x00" in body.input_text:
            raise GatewayError(
                ErrorCode.INVALID_REQUEST, "input_text contains a NUL character", 422
            )
        params = resolve_params(manifest, body.params)  # InvalidParamsError: a 422 of its own
        return RunRequest(
            workflow=manifest.name,
            input_text=body.input_text,
            params=params,
            device_id=origin.device_id,
            session_id=origin.session_id,
            safety_level=origin.safety_level,
        )

    async def _screen_input(self, request: RunRequest, origin: Origin) -> None:
        """The prompt's safety checks, before anything is queued or sent anywhere. A refused
        prompt is still recorded (``failed``, stage ``safety``) so research sees what was
        attempted; the answer names the rule ids, never the words that matched."""
        decision = await self.screen.screen_text(
            origin.safety_level, CheckPoint.INPUT, request.input_text
        )
        if decision.verdict is Verdict.ALLOWED:
            return
        await self.rate_limiter.check(origin.device_id)  # refusals count against the device too
        run_id = new_run_id()
        blocked = decision.verdict is Verdict.BLOCKED
        code = ErrorCode.PROMPT_BLOCKED if blocked else ErrorCode.SAFETY_UNAVAILABLE
        with run_context(run_id):
            logger.warning(
                "prompt %s at level %s by %s (rules %s)",
                "blocked" if blocked else "not checked: a safety check gave no answer",
                origin.safety_level.value,
                ",".join(r.check for r in decision.results),
                ",".join(decision.rules) or "-",
            )
            await self._record_refusal(run_id, request, code, decision)
        if blocked:
            raise GatewayError(
                code,
                f"run {run_id}: this prompt cannot be used here; please describe something else",
                422,
            )
        raise GatewayError(
            code,
            f"run {run_id}: the safety check could not answer, so nothing was started; try again",
            503,
        )

    async def _record_refusal(
        self, run_id: str, request: RunRequest, code: ErrorCode, decision: Decision
    ) -> None:
        checks = ", ".join(
            f"{r.check}={r.verdict.value}" + (f" ({', '.join(r.rules)})" if r.rules else "")
            for r in decision.results
        )
        message = (
            f"safety {decision.point.value} check at level {decision.level.value} "
            f"(policy {decision.policy_version}): {checks}"
        )
        failure = RunError(
            stage=Stage.SAFETY,
            code=code,
            message=message,
            retryable=code != ErrorCode.PROMPT_BLOCKED,
        )
        try:
            await self.records.create(run_id, request)
            await self.records.fail(run_id, failure)
        except UpstreamError as exc:
            # The refusal itself stands (nothing was queued); only its record is missing.
            logger.error("could not record the refused prompt: %s", exc)

    async def _create(self, request: RunRequest, origin: Origin, run_id: str) -> RunAccepted:
        """Create (or, for a resumed idempotent request, re-create) the run and queue it.
        Media's create is idempotent for the same id and request, and NATS drops a repeated
        ``runs.requested`` by its message id, so resuming half-done work is safe."""
        await self.rate_limiter.check(origin.device_id)
        await self.queue_guard.check()
        with run_context(run_id):
            try:
                record = await self.records.create(run_id, request)
            except UpstreamError as exc:
                if exc.status_code == 504:
                    # media-service may still create the run after we gave up: make sure that
                    # run is then already failed instead of queued forever (best effort).
                    await self._record_failure(
                        run_id, ErrorCode.UPSTREAM_TIMEOUT, "media-service did not answer in time"
                    )
                raise
            if record.status != RunStatus.QUEUED or len(record.events) > 1:
                # A resumed request whose run went on (or failed) meanwhile: report, don't requeue.
                logger.info("run exists already as %s", record.status.value)
                return RunAccepted(
                    run_id=run_id, status=record.status, links=RunLinks(self=f"/api/runs/{run_id}")
                )
            logger.info("run created for workflow %s", request.workflow)
            try:
                await self.queue.enqueue(RunRequested(run_id=run_id, request=request))
            except NATS_ERRORS as exc:
                logger.error("queueing failed: %s", exc)
                await self._record_failure(
                    run_id,
                    ErrorCode.QUEUE_UNAVAILABLE,
                    f"could not queue the run: {type(exc).__name__}",
                )
                raise GatewayError(
                    ErrorCode.QUEUE_UNAVAILABLE,
                    f"the run {run_id} could not be queued and is recorded as failed; try again",
                    503,
                ) from exc
            except Exception as exc:
                # A bug, not an outage: the client hears a logged 500, and the run is still
                # recorded failed, so it never waits for a queue message that was not sent.
                await self._record_failure(
                    run_id, ErrorCode.INTERNAL, f"could not queue the run: {type(exc).__name__}"
                )
                raise
            logger.info("run queued")
        RUNS_BY_STATE.labels(RunStatus.QUEUED.value).inc()
        return RunAccepted(
            run_id=run_id, status=RunStatus.QUEUED, links=RunLinks(self=f"/api/runs/{run_id}")
        )

    async def cancel(self, run_id: str) -> RunAccepted:
        with run_context(run_id):
            record = await self.records.get(run_id)
            if record.status.is_final:
                raise GatewayError(
                    ErrorCode.RUN_FINISHED, f"run {run_id} is {record.status.value} already", 409
                )
            try:
                # A run still waiting in the backlog is cancelled here and now; one a pipeline
                # has taken is stopped by that pipeline, which ComfyUI must confirm.
                if await self.queue.cancel_waiting(run_id):
                    logger.info("cancelled while waiting in the backlog")
                    return RunAccepted(
                        run_id=run_id,
                        status=RunStatus.CANCELLED,
                        links=RunLinks(self=f"/api/runs/{run_id}"),
                    )
                await self.queue.request_cancel(RunCancel(run_id=run_id))
            except NATS_ERRORS as exc:
                logger.error("could not publish the cancel request: %s", exc)
                raise GatewayError(
                    ErrorCode.QUEUE_UNAVAILABLE,
                    "the cancel request could not be sent; try again",
                    503,
                ) from exc
            logger.info("cancel requested")
        return RunAccepted(
            run_id=run_id, status=record.status, links=RunLinks(self=f"/api/runs/{run_id}")
        )

    async def _record_failure(self, run_id: str, code: ErrorCode, message: str) -> None:
        failure = RunError(stage=Stage.GATEWAY, code=code, message=message, retryable=True)
        try:
            await self.records.fail(run_id, failure)
        except UpstreamError as exc:
            logger.error("could not record the failure (%s) on the run either: %s", code, exc)
