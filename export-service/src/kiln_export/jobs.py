"""Export jobs: records on the exports volume, building in a worker thread, progress on NATS.

A job is requested on JetStream (``exports.requested``) and taken by a durable consumer, so a
job whose process stops is delivered again to the next one: it is rebuilt from the start
(the half-written archive is discarded), up to ``export_max_attempts`` times; then it is
recorded ``failed`` — never left ``running`` for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.from_thread
from kiln_contracts.errors import MappedError
from kiln_contracts.exports import (
    ExportCompleted,
    ExportError,
    ExportErrorCode,
    ExportFailed,
    ExportProgress,
    ExportRequest,
    ExportState,
    ExportStatus,
    ExportTarget,
    parse_export_id,
)
from kiln_contracts.records import utc_now
from kiln_storage.local import write_atomic
from kiln_storage.scan import RunRecordUnreadableError

from kiln_export.build import IntegrityError, archive_name, build_export
from kiln_export.config import ExportSettings
from kiln_export.content import Selection, select_runs
from kiln_export.ports import Publish
from kiln_export.targets import S3Target, Upload, VolumeTarget

logger = logging.getLogger("kiln.export.jobs")

JOBS_DIR = "jobs"
ARCHIVES_DIR = "archives"
PROGRESS_INTERVAL_SECONDS = 0.25


class JobNotFoundError(MappedError):
    code = ExportErrorCode.EXPORT_NOT_FOUND
    status_code = 404

    def __init__(self, export_id: str) -> None:
        super().__init__(f"no export {export_id} (expired exports are removed)")
        self.export_id = export_id


class JobStore:
    """One JSON record per export under ``{export_root}/jobs``, replaced atomically."""

    def __init__(self, export_root: Path) -> None:
        self.directory = export_root / JOBS_DIR
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, export_id: str) -> Path:
        return self.directory / f"{parse_export_id(export_id)}.json"

    def get(self, export_id: str) -> ExportStatus:
        try:
            raw = self._path(export_id).read_bytes()
        except FileNotFoundError:
            raise JobNotFoundError(export_id) from None
        return ExportStatus.model_validate_json(raw)

    def save(self, status: ExportStatus) -> ExportStatus:
        status = status.model_copy(update={"updated_at": utc_now()})
        write_atomic(self._path(status.export_id), status.model_dump_json(indent=2).encode())
        return status

    def delete(self, export_id: str) -> None:
        self._path(export_id).unlink(missing_ok=True)

    def all(self) -> Iterator[ExportStatus]:
        for path in sorted(self.directory.glob("*.json")):
            yield ExportStatus.model_validate_json(path.read_bytes())


class HashingUpload:
    """Counts and hashes the archive as it is written, for progress and the final sha256."""

    def __init__(self, inner: Upload) -> None:
        self.inner = inner
        self.bytes = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.inner.write(data)
        self.digest.update(data)
        self.bytes += len(data)


class ExportJobs:
    def __init__(
        self,
        settings: ExportSettings,
        store: JobStore,
        volume: VolumeTarget,
        s3: S3Target | None,
        publish: Publish,
    ) -> None:
        self.settings = settings
        self.store = store
        self.volume = volume
        self.s3 = s3
        self.publish = publish

    def new_status(self, export_id: str, request: ExportRequest) -> ExportStatus:
        now = utc_now()
        return ExportStatus(
            export_id=export_id,
            state=ExportState.QUEUED,
            request=request,
            created_at=now,
            updated_at=now,
            filename=archive_name(export_id, request.format),
        )

    def target(self, request: ExportRequest) -> VolumeTarget | S3Target | None:
        return self.s3 if request.target is ExportTarget.S3 else self.volume

    async def _fail(self, status: ExportStatus, error: ExportError) -> ExportStatus:
        logger.error(
            "export %s failed: %s",
            status.export_id,
            error.message,
            extra={"export_id": status.export_id, "run_id": error.run_id, "error_code": error.code},
        )
        status = status.model_copy(
            update={
                "state": ExportState.FAILED,
                "error": error,
                "expires_at": utc_now() + self.settings.export_ttl,
            }
        )
        status = await anyio.to_thread.run_sync(self.store.save, status)
        await self.publish(ExportFailed(export_id=status.export_id, error=error))
        return status

    async def give_up(self, export_id: str, reason: str) -> None:
        """The consumer ran out of deliveries: say so on the record and on NATS."""
        status = await anyio.to_thread.run_sync(self.store.get, export_id)
        if not status.state.is_final:
            await self._fail(
                status, ExportError(code=ExportErrorCode.EXPORT_FAILED, message=reason)
            )

    async def run(self, export_id: str) -> ExportStatus:
        """Build one export. Integrity and record errors end it ``failed`` (no retry: the
        data will not change by trying again); anything else propagates to be retried."""
        status = await anyio.to_thread.run_sync(self.store.get, export_id)
        if status.state.is_final:
            return status  # a redelivered request changes nothing
        if status.attempt >= self.settings.export_max_attempts:
            return await self._fail(
                status,
                ExportError(
                    code=ExportErrorCode.EXPORT_FAILED,
                    message=f"gave up after {status.attempt} attempts (the service stopped or "
                    "failed while building it each time)",
                ),
            )
        target = self.target(status.request)
        if target is None:
            return await self._fail(
                status,
                ExportError(
                    code=ExportErrorCode.TARGET_UNAVAILABLE,
                    message="the S3 target is not configured (KILN_EXPORT_S3_URL)",
                ),
            )
        status = status.model_copy(
            update={
                "state": ExportState.RUNNING,
                "attempt": status.attempt + 1,
                "runs_done": 0,
                "bytes": 0,
            }
        )
        status = await anyio.to_thread.run_sync(self.store.save, status)
        try:
            selection = await anyio.to_thread.run_sync(
                select_runs, self.settings.storage_root, status.request.filter
            )
        except RunRecordUnreadableError as exc:
            return await self._fail(
                status,
                ExportError(
                    code=ExportErrorCode.RECORD_UNREADABLE, message=str(exc), run_id=exc.run_id
                ),
            )
        status = status.model_copy(
            update={
                "runs_total": len(selection.run_ids),
                "skipped_in_progress": selection.skipped_in_progress,
                "missing": selection.missing,
            }
        )
        status = await anyio.to_thread.run_sync(self.store.save, status)
        await self._progress(status)
        return await self._build(status, selection, target)

    async def _progress(self, status: ExportStatus) -> None:
        await self.publish(
            ExportProgress(
                export_id=status.export_id,
                state=status.state,
                runs_done=status.runs_done,
                runs_total=status.runs_total,
                bytes=status.bytes,
            )
        )

    async def _build(
        self, status: ExportStatus, selection: Selection, target: VolumeTarget | S3Target
    ) -> ExportStatus:
        assert status.filename is not None
        upload = HashingUpload(await anyio.to_thread.run_sync(target.open, status.filename))
        current = status
        last_report = 0.0

        async def report(runs_done: int) -> None:
            nonlocal current
            current = current.model_copy(update={"runs_done": runs_done, "bytes": upload.bytes})
            current = await anyio.to_thread.run_sync(self.store.save, current)
            await self._progress(current)

        def on_run_done(runs_done: int) -> None:
            nonlocal last_report
            now = time.monotonic()
            if now - last_report >= PROGRESS_INTERVAL_SECONDS or runs_done == status.runs_total:
                last_report = now
                anyio.from_thread.run(report, runs_done)

        stop = threading.Event()

        def build() -> None:
            build_export(
                self.settings.storage_root,
                status.export_id,
                status.request,
                selection,
                upload,
                on_run_done,
                self.settings.export_max_bytes_per_second,
                stop=stop,
            )
            upload.inner.commit()

        worker = asyncio.ensure_future(anyio.to_thread.run_sync(build))
        try:
            await asyncio.shield(worker)
        except asyncio.CancelledError:
            # Shutting down: stop the thread at its next chunk, drop the partial archive, and
            # let the consumer hand the job back to JetStream for the next process.
            stop.set()
            with contextlib.suppress(BaseException):
                await worker
            await anyio.to_thread.run_sync(upload.inner.abort)
            logger.warning(
                "export %s interrupted by shutdown; it will be resumed", status.export_id
            )
            raise
        except RunRecordUnreadableError as exc:
            await anyio.to_thread.run_sync(upload.inner.abort)
            return await self._fail(
                current,
                ExportError(
                    code=ExportErrorCode.RECORD_UNREADABLE, message=str(exc), run_id=exc.run_id
                ),
            )
        except IntegrityError as exc:
            await anyio.to_thread.run_sync(upload.inner.abort)
            return await self._fail(
                current,
                ExportError(
                    code=ExportErrorCode.INTEGRITY_FAILED,
                    message=str(exc),
                    run_id=exc.run_id,
                    filename=exc.filename,
                ),
            )
        except Exception:
            await anyio.to_thread.run_sync(upload.inner.abort)
            raise

        expires_at = utc_now() + self.settings.export_ttl
        download_url = None
        if isinstance(target, S3Target):
            seconds = int(self.settings.export_ttl.total_seconds())
            download_url = await anyio.to_thread.run_sync(
                target.presign, status.filename, min(seconds, 7 * 24 * 3600)
            )
        current = current.model_copy(
            update={
                "state": ExportState.COMPLETED,
                "runs_done": status.runs_total,
                "bytes": upload.bytes,
                "sha256": upload.digest.hexdigest(),
                "expires_at": expires_at,
                "download_url": download_url,
            }
        )
        current = await anyio.to_thread.run_sync(self.store.save, current)
        logger.info(
            "export %s completed: %d runs, %d bytes",
            status.export_id,
            current.runs_total,
            current.bytes,
            extra={"export_id": status.export_id},
        )
        await self.publish(
            ExportCompleted(
                export_id=status.export_id,
                runs_total=current.runs_total,
                bytes=current.bytes,
                sha256=upload.digest.hexdigest(),
            )
        )
        return current

    def cleanup(self, now: datetime | None = None) -> int:
        """Delete archives whose time is up, and their records. Returns how many went."""
        now = now or datetime.now(UTC)
        removed = 0
        for status in self.store.all():
            if status.expires_at is None or status.expires_at > now:
                continue
            if status.filename:
                target = self.target(status.request)
                if target is not None:
                    target.delete(status.filename)
            self.store.delete(status.export_id)
            logger.info("export %s expired and was removed", status.export_id)
            removed += 1
        # Partials are rewritten at least every few seconds while a job runs; one untouched
        # for a whole TTL is left from a killed process.
        self.volume.clear_partials(self.settings.export_ttl.total_seconds())
        return removed
