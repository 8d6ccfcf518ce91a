"""Creating a run: validate, mint the one id, have media-service create the record, queue it.

Order matters: the run exists on storage before it is queued, and if queueing fails the run is
recorded ``failed`` with a code before the client hears 503, so nothing ever waits forever.
"""

from __future__ import annotations

import logging

from kiln_common.logging import run_context
from kiln_common.nats import publish_run_event
from kiln_contracts.api import CreateRunBody, FailRunBody
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import RunCancel, RunRequested
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunRecord, RunRequest, RunStatus, Stage
from kiln_contracts.subjects import RUNS_REQUESTED, RunEventName, run_event_subject
from kiln_contracts.workflows import InvalidParamsError, resolve_params
from nats.js import JetStreamContext

from kiln_gateway.catalog import WorkflowCatalog
from kiln_gateway.errors import GatewayError
from kiln_gateway.models import CreateRunRequest, RunAccepted, RunLinks
from kiln_gateway.upstream import Upstream

logger = logging.getLogger("kiln.gateway.runs")


class RunCreator:
    def __init__(
        self, catalog: WorkflowCatalog, media: Upstream, js: JetStreamContext, max_input_chars: int
    ) -> None:
        self.catalog = catalog
        self.media = media
        self.js = js
        self.max_input_chars = max_input_chars

    async def create(
        self, body: CreateRunRequest, device_id: str | None = None, session_id: str | None = None
    ) -> RunAccepted:
        manifest = await self.catalog.get(body.workflow)
        if manifest is None:
            raise GatewayError(
                ErrorCode.UNKNOWN_WORKFLOW, f"no workflow named {body.workflow!r}", 404
            )
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
        try:
            params = resolve_params(manifest, body.params)
        except InvalidParamsError as exc:
            raise GatewayError(ErrorCode.INVALID_PARAMS, str(exc), 422) from None

        run_id = new_run_id()
        with run_context(run_id):
            request = RunRequest(
                workflow=manifest.name,
                input_text=body.input_text,
                params=params,
                device_id=device_id,
                session_id=session_id,
            )
            await self.media.request(
                "POST",
                "/runs",
                json=CreateRunBody(run_id=run_id, request=request).model_dump(mode="json"),
            )
            logger.info("run created for workflow %s", manifest.name)
            requested = RunRequested(run_id=run_id, **request.model_dump())
            try:
                await publish_run_event(self.js, RUNS_REQUESTED, requested)
            except Exception as exc:
                logger.error("queueing failed: %s", exc)
                await self._record_queue_failure(run_id, exc)
                raise GatewayError(
                    ErrorCode.QUEUE_UNAVAILABLE,
                    f"the run {run_id} could not be queued and is recorded as failed; try again",
                    503,
                ) from exc
            logger.info("run queued")
        return RunAccepted(
            run_id=run_id, status=RunStatus.QUEUED, links=RunLinks(self=f"/api/runs/{run_id}")
        )

    async def cancel(self, run_id: str) -> RunAccepted:
        with run_context(run_id):
            record = RunRecord.model_validate(await self.media.get_json(f"/runs/{run_id}"))
            if record.status.is_final:
                raise GatewayError(
                    ErrorCode.RUN_FINISHED, f"run {run_id} is {record.status.value} already", 409
                )
            try:
                await publish_run_event(
                    self.js,
                    run_event_subject(run_id, RunEventName.CANCEL),
                    RunCancel(run_id=run_id),
                )
            except Exception as exc:
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

    async def _record_queue_failure(self, run_id: str, exc: BaseException) -> None:
        failure = FailRunBody(
            stage=Stage.GATEWAY.value,
            code=ErrorCode.QUEUE_UNAVAILABLE.value,
            message=f"could not queue the run: {type(exc).__name__}",
            retryable=True,
        )
        try:
            await self.media.request("POST", f"/runs/{run_id}/fail", json=failure.model_dump())
        except GatewayError:
            logger.exception("could not record the queueing failure either")
