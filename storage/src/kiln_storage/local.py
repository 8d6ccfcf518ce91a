"""The storage root on a local (or shared) volume. Domain code: no FastAPI, no NATS.

Every write is temp file → fsync → rename → directory fsync, and every change to a run's
record happens under a per-run lock that also holds between processes on one volume.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from filelock import FileLock
from kiln_contracts.ids import is_run_id, parse_run_id, run_date
from kiln_contracts.layout import (
    LOCK_FILE,
    METADATA_FILE,
    RUNS_DIR,
    STORAGE_ID_FILE,
    parse_entity_filename,
    run_relpath,
)
from kiln_contracts.records import (
    Entity,
    RunRecord,
    RunRequest,
    utc_now,
)

from kiln_storage.base import (
    CHUNK_SIZE,
    EntityMissingError,
    EntityNotFoundError,
    RunExistsError,
    RunNotFoundError,
    RunStorage,
    StagedFile,
    StagingWriter,
    deletion_entry,
    dump_record,
    new_entity,
    new_record,
    with_block,
)

logger = logging.getLogger("kiln.storage")

AUDIT_DIR = "audit"
DELETIONS_LOG = "deletions.jsonl"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _version(stat: os.stat_result) -> str:
    return f"{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"


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


class RunStore(RunStorage):
    def __init__(self, root: Path) -> None:
        self.root = root
        self._thread_locks: dict[str, threading.Lock] = {}
        self._thread_locks_guard = threading.Lock()
        # Called with a run id after its record changed (or the run was deleted): the listing
        # index keeps itself current this way.
        self.listeners: list[Callable[[str], None]] = []

    def _changed(self, run_id: str) -> None:
        for listener in self.listeners:
            listener(run_id)

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
        return self.read_storage_id()

    def read_storage_id(self) -> str:
        storage_id = (self.root / STORAGE_ID_FILE).read_text().strip()
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
        with thread_lock:
            try:
                file_lock = FileLock(run_dir / LOCK_FILE, timeout=30)
                file_lock.acquire()
            except FileNotFoundError:
                # The folder was deleted (renamed away) while we waited.
                raise RunNotFoundError(run_id) from None
            try:
                if not (run_dir / METADATA_FILE).exists():
                    raise RunNotFoundError(run_id)
                yield run_dir
            finally:
                file_lock.release()

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
            record, input_name, input_bytes = new_record(run_id, request, utc_now())
            write_atomic(staging / input_name, input_bytes)
            write_atomic(staging / METADATA_FILE, dump_record(record))
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
        self._changed(run_id)
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
            write_atomic(run_dir / METADATA_FILE, dump_record(updated))
        self._changed(run_id)
        return updated

    # -- entities --------------------------------------------------------------------------
    def open_staging(self, run_id: str) -> StagingWriter:
        """A temp file inside the run folder (so the final rename stays on one filesystem),
        hashed as it is written: outputs are never held whole in memory."""
        run_dir = self.run_dir(run_id)
        if not (run_dir / METADATA_FILE).exists():
            raise RunNotFoundError(run_id)
        return StagingWriter(run_dir)

    def commit_entity(
        self,
        run_id: str,
        staged: StagedFile,
        entity_type: str,
        ext: str,
        mime: str,
        meta: dict[str, Any],
        change: Callable[[RunRecord, Entity], RunRecord] | None = None,
        existing: Callable[[RunRecord], Entity | None] | None = None,
    ) -> Entity:
        """Give a staged file the run's next sequence number and list it in ``metadata.json``.

        Sequence allocation, rename and record update happen under one lock, so two writers
        (threads or processes) can never take the same number or lose each other's entity.
        ``existing`` is asked under that lock whether the entity is stored already (say, by
        another replica handling the same event): then nothing is written and that entity
        is returned, so an entity is stored once however many writers race for it.
        """
        with self.locked(run_id) as run_dir:
            record = self.read(run_id)
            if existing is not None:
                found = existing(record)
                if found is not None:
                    return found
            entity = new_entity(record.next_seq(), entity_type, ext, mime, staged, meta)
            target = run_dir / entity.filename
            if target.exists():
                # Not listed, and nobody else can be writing it while we hold the lock: the
                # leftover of a writer that died between rename and record. Replace it.
                logger.warning(
                    "%s was on disk but not listed (an interrupted write); replacing it",
                    entity.filename,
                    extra={"run_id": run_id},
                )
            os.replace(staged.path, target)
            _fsync_dir(run_dir)
            updated = record.model_copy(update={"entities": [*record.entities, entity]})
            if change is not None:
                updated = change(updated, entity)
            updated = updated.model_copy(update={"updated_at": utc_now()})
            write_atomic(run_dir / METADATA_FILE, dump_record(updated))
        self._changed(run_id)
        return entity

    def set_blocked(self, run_id: str, filename: str, reason: str | None) -> Entity:
        """Block an entity with a reason (never served, kept for research), or unblock it
        with ``reason=None``. The change is recorded in the run's history."""
        parse_entity_filename(filename)
        found: list[Entity] = []

        def change(record: RunRecord) -> RunRecord | None:
            changed, entity = with_block(record, run_id, filename, reason)
            found.append(entity)
            return changed

        self.update(run_id, change)
        return found[-1]

    # -- reading (export-service reads runs through these) ----------------------------------
    def iter_run_ids(self) -> Iterator[str]:
        """Every run on the root, newest day first (folder names only: nothing is parsed)."""
        runs = self.root / RUNS_DIR
        if not runs.is_dir():
            return
        for day in sorted((d.name for d in os.scandir(runs) if d.is_dir()), reverse=True):
            if day.startswith("."):
                continue
            names = sorted(
                (e.name for e in os.scandir(runs / day) if is_run_id(e.name)), reverse=True
            )
            yield from names

    def read_raw(self, run_id: str) -> tuple[bytes, str]:
        """``metadata.json`` as stored, with its version (of the very file read: the file is
        only ever replaced, so its inode names its version)."""
        # A plain string path: listing reads many records, and pathlib costs more than the read.
        path = f"{self.root}/{RUNS_DIR}/{run_date(run_id).isoformat()}/{run_id}/{METADATA_FILE}"
        try:
            with open(path, "rb") as handle:
                return handle.read(), _version(os.fstat(handle.fileno()))
        except FileNotFoundError:
            raise RunNotFoundError(run_id) from None

    def scan_versions(self, first_day: str | None = None) -> Iterator[tuple[str, str]]:
        """(run id, record version) of every run, or of the runs of ``first_day`` and later;
        one stat per run, nothing parsed."""
        runs = self.root / RUNS_DIR
        if not runs.is_dir():
            return
        for day in os.scandir(runs):
            if not day.is_dir() or day.name.startswith("."):
                continue
            if first_day is not None and day.name < first_day:
                continue
            for entry in os.scandir(day.path):
                if not is_run_id(entry.name):
                    continue
                try:
                    stat = os.stat(os.path.join(entry.path, METADATA_FILE))
                except FileNotFoundError:
                    continue
                yield entry.name, _version(stat)

    def iter_entity(self, run_id: str, filename: str) -> Iterator[bytes]:
        """An entity's bytes in chunks (never whole in memory)."""
        path, _ = self.entity_path(run_id, filename)
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk

    # -- crash debris --------------------------------------------------------------------------
    def remove_crash_debris(self, grace_seconds: float) -> list[str]:
        """Remove what a crashed writer left behind, if untouched for ``grace_seconds``: temp
        files in run folders (``.metadata.json.*.tmp``, ``.incoming.*.tmp``), half-built run
        folders (``.{run_id}.*``) and half-removed deleted ones (``.deleted.*``) in day folders.
        The grace period spares the temp files of writers still at work (a live download keeps
        its file's mtime fresh). Returns the removed paths, relative to the root."""
        runs = self.root / RUNS_DIR
        if not runs.is_dir():
            return []
        cutoff = time.time() - grace_seconds
        removed: list[str] = []

        def stale(path: str) -> bool:
            try:
                return os.lstat(path).st_mtime < cutoff
            except FileNotFoundError:
                return False

        for day in os.scandir(runs):
            if not day.is_dir(follow_symlinks=False) or day.name.startswith("."):
                continue
            for entry in os.scandir(day.path):
                if entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                    if stale(entry.path):
                        shutil.rmtree(entry.path, ignore_errors=True)
                        removed.append(f"{RUNS_DIR}/{day.name}/{entry.name}")
                    continue
                if not is_run_id(entry.name) or not entry.is_dir(follow_symlinks=False):
                    continue
                for item in os.scandir(entry.path):
                    if not (item.name.startswith(".") and item.name.endswith(".tmp")):
                        continue
                    if item.is_file(follow_symlinks=False) and stale(item.path):
                        with suppress(FileNotFoundError):
                            os.unlink(item.path)
                        removed.append(f"{RUNS_DIR}/{day.name}/{entry.name}/{item.name}")
        for item in os.scandir(self.root):
            # An interrupted ensure_storage_id leaves its temp file at the root.
            is_temp = item.name.startswith(".storage-id.") and item.is_file(follow_symlinks=False)
            if is_temp and stale(item.path):
                with suppress(FileNotFoundError):
                    os.unlink(item.path)
                removed.append(item.name)
        return removed

    # -- deletion ----------------------------------------------------------------------------
    def delete_run(self, run_id: str, reason: str, actor: str, detail: dict[str, Any]) -> bool:
        """Delete a run's folder and append the deletion to the audit log.

        The folder is first renamed out of the layout under the run's lock, so readers see the
        whole run or no run; then the audit line is written; then the bytes are removed. False
        when there was no such run (another replica deleted it first): nothing is logged then.
        """
        try:
            with self.locked(run_id) as run_dir:
                record = self.read(run_id)
                graveyard = run_dir.parent / f".deleted.{run_id}.{uuid.uuid4().hex[:8]}"
                os.rename(run_dir, graveyard)
                _fsync_dir(run_dir.parent)
        except RunNotFoundError:
            return False
        self.append_audit(deletion_entry(record, reason, actor, detail))
        self._changed(run_id)
        shutil.rmtree(graveyard)
        return True

    @property
    def audit_log_path(self) -> Path:
        return self.root / AUDIT_DIR / DELETIONS_LOG

    def append_audit(self, entry: dict[str, Any]) -> None:
        """Append one JSON line to the append-only audit log (O_APPEND, fsynced, one write
        under a file lock, so lines from two replicas never interleave)."""
        path = self.audit_log_path
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, ensure_ascii=False, sort_keys=True).encode() + b"\n"
        with FileLock(path.parent / LOCK_FILE, timeout=30):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def read_audit(self) -> list[dict[str, Any]]:
        try:
            lines = self.audit_log_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def entity(self, run_id: str, filename: str) -> Entity:
        """A listed entity. Names are validated before anything touches the filesystem."""
        parse_entity_filename(filename)
        entity = self.read(run_id).entity(filename)
        if entity is None:
            raise EntityNotFoundError(run_id, filename)
        return entity

    def entity_path(self, run_id: str, filename: str) -> tuple[Path, Entity]:
        """The path of a listed entity: only names listed in ``metadata.json`` are served."""
        entity = self.entity(run_id, filename)
        path = self.run_dir(run_id) / entity.filename
        if not path.is_file():
            raise EntityMissingError(run_id, filename, "on disk")
        return path, entity
