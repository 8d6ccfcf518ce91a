"""The storage root on a local (or shared) volume. Domain code: no FastAPI, no NATS.

Every write is temp file → fsync → rename → directory fsync, and every change to a run's
record happens under a per-run lock that also holds between processes on one volume.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock
from kiln_contracts.ids import parse_run_id
from kiln_contracts.layout import (
    LOCK_FILE,
    METADATA_FILE,
    STORAGE_ID_FILE,
    entity_filename,
    parse_entity_filename,
    run_relpath,
)
from kiln_contracts.records import (
    Entity,
    RunHistoryEntry,
    RunRecord,
    RunRequest,
    RunStatus,
    utc_now,
)


class StorageError(Exception):
    """Base for storage failures the caller must report."""


class RunNotFoundError(StorageError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run {run_id} on this storage root")
        self.run_id = run_id


class RunExistsError(StorageError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} exists already")
        self.run_id = run_id


class EntityNotFoundError(StorageError):
    def __init__(self, run_id: str, filename: str) -> None:
        super().__init__(f"run {run_id} has no file {filename}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


@dataclass(frozen=True)
class StagedFile:
    """Bytes already on the volume (in the run folder, under a temp name), checksummed."""

    path: Path
    size: int
    sha256: str
    head: bytes = b""


class StagingWriter:
    def __init__(self, directory: Path) -> None:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".incoming.", suffix=".tmp")
        self.path = Path(tmp)
        self._handle = os.fdopen(fd, "wb")
        self._digest = hashlib.sha256()
        self._size = 0
        self.head = b""

    def write(self, chunk: bytes) -> None:
        if len(self.head) < 64:
            self.head = (self.head + chunk)[:64]
        self._digest.update(chunk)
        self._size += len(chunk)
        self._handle.write(chunk)

    def finish(self) -> StagedFile:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        return StagedFile(
            path=self.path, size=self._size, sha256=self._digest.hexdigest(), head=self.head
        )

    def abort(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)


class RunStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._thread_locks: dict[str, threading.Lock] = {}
        self._thread_locks_guard = threading.Lock()

    # -- the root --------------------------------------------------------------------------
    def ensure_storage_id(self) -> str:
        """Read the root's id, writing a new one first if this root has none (exactly once,
        even when several replicas start together: ``link`` fails if the name exists)."""
        self.root.mkdir(parents=True, exist_ok=True)
        id_path = self.root / STORAGE_ID_FILE
        if not id_path.exists():
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".storage-id.")
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(str(uuid.uuid4()) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                with suppress(FileExistsError):
                    os.link(tmp, id_path)
            finally:
                Path(tmp).unlink(missing_ok=True)
            _fsync_dir(self.root)
        storage_id = id_path.read_text().strip()
        uuid.UUID(storage_id)
        return storage_id

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_relpath(run_id)

    # -- locking ---------------------------------------------------------------------------
    @contextmanager
    def locked(self, run_id: str) -> Iterator[Path]:
        """Per-run lock: a thread lock inside this process, a file lock across processes."""
        run_dir = self.run_dir(run_id)
        if not (run_dir / METADATA_FILE).exists():
            raise RunNotFoundError(run_id)
        with self._thread_locks_guard:
            thread_lock = self._thread_locks.setdefault(run_id, threading.Lock())
        with thread_lock, FileLock(run_dir / LOCK_FILE, timeout=30):
            yield run_dir

    # -- records ---------------------------------------------------------------------------
    def create_run(self, run_id: str, request: RunRequest) -> RunRecord:
        """Create the folder, ``01_input.txt`` and ``metadata.json`` as one step: the folder is
        built under a temp name and renamed into place, so it appears whole or not at all."""
        parse_run_id(run_id)
        final = self.run_dir(run_id)
        if final.exists():
            raise RunExistsError(run_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{run_id}."))
        try:
            now = utc_now()
            input_bytes = request.input_text.encode("utf-8")
            input_name = entity_filename(1, "input", "txt")
            write_atomic(staging / input_name, input_bytes)
            record = RunRecord(
                run_id=run_id,
                status=RunStatus.QUEUED,
                created_at=now,
                updated_at=now,
                request=request,
                entities=[
                    Entity(
                        seq=1,
                        type="input",
                        filename=input_name,
                        mime="text/plain; charset=utf-8",
                        size=len(input_bytes),
                        sha256=hashlib.sha256(input_bytes).hexdigest(),
                        created_at=now,
                    )
                ],
                events=[RunHistoryEntry(at=now, event="created", status=RunStatus.QUEUED)],
            )
            write_atomic(staging / METADATA_FILE, _dump(record))
            os.chmod(staging, 0o755)  # noqa: S103 - mkdtemp's 0700 would hide the run from readers
            try:
                os.rename(staging, final)
            except OSError as exc:
                # rename onto a non-empty directory fails: another request created it first.
                raise RunExistsError(run_id) from exc
            _fsync_dir(final.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return record

    def read(self, run_id: str) -> RunRecord:
        path = self.run_dir(run_id) / METADATA_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise RunNotFoundError(run_id) from None
        return RunRecord.model_validate_json(raw)

    def update(self, run_id: str, change: Callable[[RunRecord], RunRecord | None]) -> RunRecord:
        """Read-modify-write the record under the run's lock. ``change`` returns the new record,
        or None to leave it as it is (the file is then not rewritten)."""
        with self.locked(run_id) as run_dir:
            current = self.read(run_id)
            updated = change(current)
            if updated is None:
                return current
            updated = updated.model_copy(update={"updated_at": utc_now()})
            write_atomic(run_dir / METADATA_FILE, _dump(updated))
            return updated

    # -- entities --------------------------------------------------------------------------
    def open_staging(self, run_id: str) -> StagingWriter:
        """A temp file inside the run folder (so the final rename stays on one filesystem),
        hashed as it is written: outputs are never held whole in memory."""
        run_dir = self.run_dir(run_id)
        if not (run_dir / METADATA_FILE).exists():
            raise RunNotFoundError(run_id)
        return StagingWriter(run_dir)

    def stage_stream(self, run_id: str, chunks: Iterator[bytes]) -> StagedFile:
        writer = self.open_staging(run_id)
        try:
            for chunk in chunks:
                writer.write(chunk)
            return writer.finish()
        except BaseException:
            writer.abort()
            raise

    def discard(self, staged: StagedFile) -> None:
        staged.path.unlink(missing_ok=True)

    def commit_entity(
        self,
        run_id: str,
        staged: StagedFile,
        entity_type: str,
        ext: str,
        mime: str,
        meta: dict[str, Any],
        change: Callable[[RunRecord, Entity], RunRecord] | None = None,
    ) -> Entity:
        """Give a staged file the run's next sequence number and list it in ``metadata.json``.

        Sequence allocation, rename and record update happen under one lock, so two writers
        (threads or processes) can never take the same number or lose each other's entity.
        """
        with self.locked(run_id) as run_dir:
            record = self.read(run_id)
            seq = record.next_seq()
            filename = entity_filename(seq, entity_type, ext)
            target = run_dir / filename
            if target.exists():
                raise StorageError(f"{filename} exists but is not in metadata.json")
            entity = Entity(
                seq=seq,
                type=entity_type,
                filename=filename,
                mime=mime,
                size=staged.size,
                sha256=staged.sha256,
                created_at=utc_now(),
                meta=meta,
            )
            os.replace(staged.path, target)
            _fsync_dir(run_dir)
            updated = record.model_copy(update={"entities": [*record.entities, entity]})
            if change is not None:
                updated = change(updated, entity)
            updated = updated.model_copy(update={"updated_at": utc_now()})
            write_atomic(run_dir / METADATA_FILE, _dump(updated))
            return entity

    def add_bytes(
        self, run_id: str, data: bytes, entity_type: str, ext: str, mime: str, meta: dict[str, Any]
    ) -> Entity:
        staged = self.stage_stream(run_id, iter([data]))
        try:
            return self.commit_entity(run_id, staged, entity_type, ext, mime, meta)
        finally:
            self.discard(staged)

    def entity_path(self, run_id: str, filename: str) -> tuple[Path, Entity]:
        """The path of a listed entity. Only names listed in ``metadata.json`` are served, and
        names are validated before they touch the filesystem."""
        parse_entity_filename(filename)
        record = self.read(run_id)
        entity = record.entity(filename)
        if entity is None:
            raise EntityNotFoundError(run_id, filename)
        path = self.run_dir(run_id) / entity.filename
        if not path.is_file():
            raise StorageError(f"{filename} is listed for run {run_id} but missing on disk")
        return path, entity


def _dump(record: RunRecord) -> bytes:
    return json.dumps(record.model_dump(mode="json"), indent=2, ensure_ascii=False).encode() + b"\n"
