"""Applying run events to the record and storing outputs. Domain logic: no FastAPI, no NATS.

Every handler is idempotent: a duplicated or redelivered event changes nothing the second
time, and an event that arrives after a final state is ignored (and logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import PurePosixPath
from typing import Any

import anyio
from kiln_contracts.errors import ErrorCode
from kiln_contracts.events import (
    GeneratedOutput,
    RunCancelled,
    RunCancelling,
    RunFailed,
    RunGenerated,
    RunResubmitted,
    RunStarted,
    RunStored,
    RunTextStage,
    TextStageOutput,
)
from kiln_contracts.layout import is_entity_type
from kiln_contracts.records import (
    Entity,
    RunHistoryEntry,
    RunRecord,
    RunRequest,
    RunStatus,
    Stage,
    can_transition,
    utc_now,
)
from kiln_storage.base import RunExistsError, RunStorage, StagedFile

from kiln_media.formats import check_format, mime_for, probe
from kiln_media.ports import EventPublisher, OutputFetchError, OutputSource

logger = logging.getLogger("kiln.media")

_KIND_TO_TYPE = {
    "images": "image",
    "gifs": "animation",
    "audio": "audio",
    "video": "video",
    "videos": "video",
    "text": "text",
    "3d": "model",
    "meshes": "model",
}


def _outputs(record: RunRecord) -> list[str]:
    return [e.filename for e in record.entities if e.type.startswith("output_")]


def _source_key(output: GeneratedOutput) -> str:
    return str(PurePosixPath(output.subfolder or ".", output.filename))


def _transition(
    record: RunRecord,
    status: RunStatus,
    event: str,
    detail: dict[str, Any] | None = None,
    **fields: Any,
) -> RunRecord | None:
    """The record moved to ``status`` with a history entry, or None if that is not allowed
    (already final, already further along, or this event was applied before)."""
    if any(entry.event == event for entry in record.events):
        logger.info("event %s already applied; ignoring the repeat", event)
        return None
    if not can_transition(record.status, status) and not (
        record.status == status and not status.is_final
    ):
        logger.info("ignoring %s: run is %s", event, record.status.value)
        return None
    entry = RunHistoryEntry(at=utc_now(), event=event, status=status, detail=detail or {})
    return record.model_copy(update={"status": status, "events": [*record.events, entry], **fields})


def _late_started(record: RunRecord, event: RunStarted) -> RunRecord | None:
    """A ``started`` that arrives after the run moved on (consumers work on several messages at
    once, so ``generated`` can be applied first) still happened first: put it in the history
    at its own time, without moving the status back. One that truly came after a failure or
    cancel is ignored."""
    if any(entry.event == "started" for entry in record.events):
        return None
    if record.status in (RunStatus.FAILED, RunStatus.CANCELLED):
        ended_at = max(entry.at for entry in record.events)
        if event.at >= ended_at:
            logger.info("ignoring started: run was %s before it", record.status.value)
            return None
    entry = RunHistoryEntry(
        at=event.at,
        event="started",
        status=RunStatus.RUNNING,
        detail={"backend": event.backend, "seed": event.seed, "applied_late": True},
    )
    logger.info("started applied late (run is %s); history kept in time order", record.status.value)
    return record.model_copy(
        update={
            "events": sorted([*record.events, entry], key=lambda e: e.at),
            "backend": record.backend or event.backend,
        }
    )


def _noted(record: RunRecord, event: str, at: Any, detail: dict[str, Any]) -> RunRecord | None:
    """The record with a history entry that changes no state (``cancelling``, ``resubmitted``),
    in time order; None for a repeat, or for one that came after the run ended (a note that
    happened before the end but is applied after it still goes in, at its own time)."""
    if any(e.event == event and e.detail == detail for e in record.events):
        logger.info("event %s already applied; ignoring the repeat", event)
        return None
    if record.status.is_final and at >= max(e.at for e in record.events):
        logger.info("ignoring %s: run was %s before it", event, record.status.value)
        return None
    entry = RunHistoryEntry(at=at, event=event, status=record.status, detail=detail)
    return record.model_copy(update={"events": sorted([*record.events, entry], key=lambda e: e.at)})


class MediaService:
    def __init__(
        self,
        store: RunStorage,
        source: OutputSource,
        publisher: EventPublisher,
        fetch_attempts: int = 4,
        fetch_backoff_seconds: float = 0.25,
    ) -> None:
        self.store = store
        self.source = source
        self.publisher = publisher
        self.fetch_attempts = fetch_attempts
        self.fetch_backoff_seconds = fetch_backoff_seconds

    # -- creation & reading ------------------------------------------------------------------
    async def create_run(self, run_id: str, request: RunRequest) -> RunRecord:
        """Idempotent for the same id and request (a gateway retrying after a lost answer gets
        the run that exists); the same id with another request is RunExistsError."""
        try:
            return await anyio.to_thread.run_sync(self.store.create_run, run_id, request)
        except RunExistsError:
            existing = await self.get_run(run_id)
            if existing.request != request:
                raise
            logger.info("create repeated for an existing run; answering with it")
            return existing

    async def get_run(self, run_id: str) -> RunRecord:
        return await anyio.to_thread.run_sync(self.store.read, run_id)

    async def record_failure(self, event: RunFailed) -> RunRecord:
        def change(record: RunRecord) -> RunRecord | None:
            return _transition(
                record,
                RunStatus.FAILED,
                "failed",
                {"stage": event.stage.value, "code": event.code.value, "message": event.message},
                error=event.error,
            )

        return await anyio.to_thread.run_sync(self.store.update, event.run_id, change)

    # -- events from the pipeline ------------------------------------------------------------
    async def on_started(self, event: RunStarted) -> None:
        def change(record: RunRecord) -> RunRecord | None:
            moved = _transition(
                record,
                RunStatus.RUNNING,
                "started",
                {"backend": event.backend, "seed": event.seed},
                backend=event.backend,
            )
            return moved if moved is not None else _late_started(record, event)

        record = await anyio.to_thread.run_sync(self.store.update, event.run_id, change)
        # The exact graph sent to ComfyUI is provenance: store it once (even on a redelivery,
        # even when the started event was applied after the outputs).
        started = any(entry.event == "started" for entry in record.events)
        if started:
            # Text stages come before the graph in the run's files, whichever event came first.
            for output in event.text_stages:
                await self._store_text_stage(event.run_id, output)
        if started and not any(e.type == "workflow" for e in record.entities):
            graph = json.dumps(event.graph, indent=2, sort_keys=True).encode()
            meta: dict[str, Any] = {"backend": event.backend}
            if event.seed is not None:
                meta["seed"] = event.seed
            await anyio.to_thread.run_sync(
                lambda: self.store.add_bytes(
                    event.run_id,
                    graph,
                    "workflow",
                    "json",
                    "application/json",
                    meta,
                    # Another replica may be applying the same redelivered event right now.
                    existing=lambda r: next((e for e in r.entities if e.type == "workflow"), None),
                )
            )

    async def on_text_stage(self, event: RunTextStage) -> None:
        await self._store_text_stage(event.run_id, event.output)

    async def _store_text_stage(self, run_id: str, output: TextStageOutput) -> None:
        """Once per stage index, however often it is announced (event, redelivery, started)."""

        def stored(record: RunRecord) -> Entity | None:
            return next(
                (
                    e
                    for e in record.entities
                    if e.type == output.stage and e.meta.get("stage_index") == output.index
                ),
                None,
            )

        await anyio.to_thread.run_sync(
            lambda: self.store.add_bytes(
                run_id,
                output.text.encode(),
                output.stage,
                "txt",
                "text/plain; charset=utf-8",
                {"stage_index": output.index, "model": output.model},
                existing=stored,
            )
        )

    async def on_failed(self, event: RunFailed) -> None:
        await self.record_failure(event)

    async def on_cancelling(self, event: RunCancelling) -> None:
        detail = {"reason": event.reason.value, "backend": event.backend}

        def change(record: RunRecord) -> RunRecord | None:
            return _noted(record, "cancelling", event.at, detail)

        await anyio.to_thread.run_sync(self.store.update, event.run_id, change)

    async def on_resubmitted(self, event: RunResubmitted) -> None:
        detail = {
            "attempt": event.attempt,
            "backend": event.backend,
            "previous_backend": event.previous_backend,
            "reason": event.reason.value,
        }

        def change(record: RunRecord) -> RunRecord | None:
            noted = _noted(record, "resubmitted", event.at, detail)
            if noted is None or noted.status.is_final:
                return noted
            return noted.model_copy(update={"backend": event.backend})

        await anyio.to_thread.run_sync(self.store.update, event.run_id, change)

    async def on_cancelled(self, event: RunCancelled) -> None:
        detail: dict[str, Any] = {
            "reason": event.reason,
            "backend_outcome": event.backend_outcome.value,
        }
        if event.backend is not None:
            detail["backend"] = event.backend
        if event.message:
            detail["message"] = event.message

        def change(record: RunRecord) -> RunRecord | None:
            return _transition(record, RunStatus.CANCELLED, "cancelled", detail)

        await anyio.to_thread.run_sync(self.store.update, event.run_id, change)

    async def on_generated(self, event: RunGenerated) -> None:
        """Fetch each output exactly once, store it, then complete the run and say so."""
        run_id = event.run_id

        detail: dict[str, Any] = {"outputs": len(event.outputs), "backend": event.backend}
        if event.late_stop is not None:
            # The backend finished it after a cancel or deadline, and the workflow keeps it.
            detail["late_stop"] = event.late_stop.model_dump(mode="json")

        def to_storing(record: RunRecord) -> RunRecord | None:
            return _transition(record, RunStatus.STORING, "generated", detail)

        record = await anyio.to_thread.run_sync(self.store.update, run_id, to_storing)
        if record.status == RunStatus.COMPLETED:
            # A redelivery after completion: say `stored` again (JetStream drops the repeat if
            # the first one got out), so a crash between storing and announcing loses nothing.
            await self.publisher.publish(RunStored(run_id=run_id, filenames=_outputs(record)))
            return
        if record.status != RunStatus.STORING:
            logger.info("not storing outputs: run is %s", record.status.value)
            return

        stored_sources = {
            str(e.meta.get("source")) for e in record.entities if e.meta.get("source")
        }
        for output in event.outputs:
            if _source_key(output) in stored_sources:
                continue
            try:
                await self._store_output(event, output)
            except OutputFetchError as exc:
                await self._fail_storage(run_id, output, str(exc), retryable=exc.retryable)
                return

        def to_completed(record: RunRecord) -> RunRecord | None:
            return _transition(record, RunStatus.COMPLETED, "stored", {"outputs": _outputs(record)})

        record = await anyio.to_thread.run_sync(self.store.update, run_id, to_completed)
        if record.status == RunStatus.COMPLETED:
            await self.publisher.publish(RunStored(run_id=run_id, filenames=_outputs(record)))

    async def _store_output(self, event: RunGenerated, output: GeneratedOutput) -> None:
        ext = PurePosixPath(output.filename).suffix.lstrip(".").lower()
        kind = _KIND_TO_TYPE.get(output.kind, output.kind)
        entity_type = f"output_{kind}"
        if not ext or not is_entity_type(entity_type) or not ext.isalnum() or len(ext) > 8:
            raise OutputFetchError(
                f"output {output.filename!r} has an unusable name", retryable=False
            )
        staged = await self._fetch_with_retries(event, output)
        try:
            if staged.size == 0:
                raise OutputFetchError(f"output {output.filename} is empty", retryable=False)
            problem = check_format(ext, staged.head)
            if problem:
                raise OutputFetchError(f"output {output.filename}: {problem}", retryable=False)
            source_key = _source_key(output)
            meta: dict[str, Any] = {
                "backend": event.backend,
                "node": output.node_id,
                "source": source_key,
                "comfyui_filename": output.filename,
                **(await anyio.to_thread.run_sync(probe, staged.path)),
            }
            await anyio.to_thread.run_sync(
                lambda: self.store.commit_entity(
                    event.run_id,
                    staged,
                    entity_type,
                    ext,
                    mime_for(ext),
                    meta,
                    # Two replicas handling one redelivered event store each output once.
                    existing=lambda r: next(
                        (e for e in r.entities if e.meta.get("source") == source_key), None
                    ),
                )
            )
        finally:
            self.store.discard(staged)

    async def _fetch_with_retries(self, event: RunGenerated, output: GeneratedOutput) -> StagedFile:
        delay = self.fetch_backoff_seconds
        for attempt in range(1, self.fetch_attempts + 1):
            writer = await anyio.to_thread.run_sync(self.store.open_staging, event.run_id)
            try:
                async for chunk in self.source.stream(event.backend_url, output):
                    writer.write(chunk)
                return await anyio.to_thread.run_sync(writer.finish)
            except OutputFetchError as exc:
                writer.abort()
                if not exc.retryable or attempt == self.fetch_attempts:
                    raise
                logger.warning(
                    "fetching %s failed (attempt %d of %d): %s",
                    output.filename,
                    attempt,
                    self.fetch_attempts,
                    exc,
                )
                await asyncio.sleep(delay)
                delay *= 2
            except BaseException:
                writer.abort()
                raise
        raise AssertionError("unreachable")

    async def _fail_storage(
        self, run_id: str, output: GeneratedOutput, message: str, *, retryable: bool
    ) -> None:
        logger.error("storing output %s failed: %s", output.filename, message)
        failed = RunFailed(
            run_id=run_id,
            stage=Stage.MEDIA,
            code=ErrorCode.STORAGE_FAILED,
            message=message,
            retryable=retryable,
            details={"output": output.model_dump(mode="json")},
        )
        await self.record_failure(failed)
        await self.publisher.publish(failed)
