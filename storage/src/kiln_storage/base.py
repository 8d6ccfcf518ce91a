"""What every storage backend shares: errors, staging of incoming bytes, and the pure changes
to a run record (so a local directory and S3 build records the same way)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kiln_contracts.errors import ErrorCode, MappedError
from kiln_contracts.layout import entity_filename
from kiln_contracts.records import (
    BlockInfo,
    Entity,
    RunHistoryEntry,
    RunRecord,
    RunRequest,
    RunStatus,
    utc_now,
)

CHUNK_SIZE = 256 * 1024

logger = logging.getLogger("kiln.storage")


class StorageError(MappedError):
    """Base for storage failures the caller must report. Each kind carries its HTTP answer;
    one that is none of the kinds below is the storage failing (500, logged)."""

    code = ErrorCode.STORAGE_FAILED


class RunNotFoundError(StorageError):
    code = ErrorCode.RUN_NOT_FOUND
    status_code = 404

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run {run_id} on this storage root")
        self.run_id = run_id


class RunExistsError(StorageError):
    code = ErrorCode.RUN_EXISTS
    status_code = 409

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} exists already")
        self.run_id = run_id


class EntityNotFoundError(StorageError):
    code = ErrorCode.FILE_NOT_FOUND
    status_code = 404

    def __init__(self, run_id: str, filename: str) -> None:
        super().__init__(f"run {run_id} has no file {filename}")
        self.run_id = run_id
        self.filename = filename


class EntityMissingError(StorageError):
    """An entity the record lists whose bytes are gone: a 404 for the caller, and an error in
    the log where it is found (the store must never lose files silently)."""

    code = ErrorCode.FILE_NOT_FOUND
    status_code = 404

    def __init__(self, run_id: str, filename: str, where: str) -> None:
        super().__init__(f"{filename} is listed for run {run_id} but missing {where}")
        logger.error("%s", self, extra={"run_id": run_id})
        self.run_id = run_id
        self.filename = filename


@dataclass(frozen=True)
class StagedFile:
    """Bytes already on a local disk under a temp name, checksummed."""

    path: Path
    size: int
    sha256: str
    head: bytes = b""


class StagingWriter:
    """A temp file hashed as it is written: outputs are never held whole in memory."""

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


def dump_record(record: RunRecord) -> bytes:
    return json.dumps(record.model_dump(mode="json"), indent=2, ensure_ascii=False).encode() + b"\n"


def new_record(run_id: str, request: RunRequest, now: datetime) -> tuple[RunRecord, str, bytes]:
    """A queued run's record, with its input as entity 1: (record, input filename, bytes)."""
    input_bytes = request.input_text.encode("utf-8")
    input_name = entity_filename(1, "input", "txt")
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
    return record, input_name, input_bytes


def new_entity(
    seq: int, entity_type: str, ext: str, mime: str, staged: StagedFile, meta: dict[str, Any]
) -> Entity:
    return Entity(
        seq=seq,
        type=entity_type,
        filename=entity_filename(seq, entity_type, ext),
        mime=mime,
        size=staged.size,
        sha256=staged.sha256,
        created_at=utc_now(),
        meta=meta,
    )


def with_block(
    record: RunRecord, run_id: str, filename: str, reason: str | None
) -> tuple[RunRecord | None, Entity]:
    """The record with ``filename`` blocked (``reason``) or unblocked (None), and the entity
    as it is then; None for the record when it is so already (nothing to write)."""
    entity = record.entity(filename)
    if entity is None:
        raise EntityNotFoundError(run_id, filename)
    if (entity.blocked is None) == (reason is None) and (
        entity.blocked is None or entity.blocked.reason == reason
    ):
        return None, entity
    now = utc_now()
    blocked = BlockInfo(reason=reason, at=now) if reason is not None else None
    updated = entity.model_copy(update={"blocked": blocked})
    entities = [updated if e.filename == filename else e for e in record.entities]
    detail: dict[str, Any] = {"filename": filename}
    if reason is not None:
        detail["reason"] = reason
    entry = RunHistoryEntry(
        at=now,
        event="blocked" if reason is not None else "unblocked",
        status=record.status,
        detail=detail,
    )
    changed = record.model_copy(update={"entities": entities, "events": [*record.events, entry]})
    return changed, updated


def deletion_entry(
    record: RunRecord, reason: str, actor: str, detail: dict[str, Any]
) -> dict[str, Any]:
    """One line of the append-only deletion audit log."""
    return {
        "at": utc_now().isoformat(),
        "action": "delete_run",
        "run_id": record.run_id,
        "reason": reason,
        "actor": actor,
        "device_id": record.request.device_id,
        "session_id": record.request.session_id,
        "created_at": record.created_at.isoformat(),
        "files": [e.filename for e in record.entities],
        **detail,
    }


class RunStorage(ABC):
    """The one storage interface: what a storage root offers, on a local volume
    (``local.RunStore``) or on S3 (``s3.S3RunStore``), and what both do the same way on top of
    their own staging and commit (``stage_stream``, ``discard``, ``add_bytes``). Readers
    (export-service) need only the reading half."""

    listeners: list[Callable[[str], None]]

    # reading
    @abstractmethod
    def ensure_storage_id(self) -> str: ...
    @abstractmethod
    def read_storage_id(self) -> str: ...
    @abstractmethod
    def read(self, run_id: str) -> RunRecord: ...
    @abstractmethod
    def read_raw(self, run_id: str) -> tuple[bytes, str]: ...
    @abstractmethod
    def scan_versions(self, first_day: str | None = None) -> Iterator[tuple[str, str]]: ...
    @abstractmethod
    def iter_run_ids(self) -> Iterator[str]: ...
    @abstractmethod
    def entity(self, run_id: str, filename: str) -> Entity: ...
    @abstractmethod
    def iter_entity(self, run_id: str, filename: str) -> Iterator[bytes]: ...
    @abstractmethod
    def read_audit(self) -> list[dict[str, Any]]: ...

    @abstractmethod
    def remove_crash_debris(self, grace_seconds: float) -> list[str]:
        """Remove temp files a crashed writer left behind (older than ``grace_seconds``);
        the removed paths. Each store knows where its writers put temp files."""

    # writing (media-service only)
    @abstractmethod
    def create_run(self, run_id: str, request: RunRequest) -> RunRecord: ...
    @abstractmethod
    def update(self, run_id: str, change: Callable[[RunRecord], RunRecord | None]) -> RunRecord: ...
    @abstractmethod
    def open_staging(self, run_id: str) -> StagingWriter: ...
    @abstractmethod
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
    ) -> Entity: ...
    @abstractmethod
    def set_blocked(self, run_id: str, filename: str, reason: str | None) -> Entity: ...
    @abstractmethod
    def delete_run(self, run_id: str, reason: str, actor: str, detail: dict[str, Any]) -> bool: ...
    @abstractmethod
    def append_audit(self, entry: dict[str, Any]) -> None: ...

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

    def add_bytes(
        self,
        run_id: str,
        data: bytes,
        entity_type: str,
        ext: str,
        mime: str,
        meta: dict[str, Any],
        existing: Callable[[RunRecord], Entity | None] | None = None,
    ) -> Entity:
        staged = self.stage_stream(run_id, iter([data]))
        try:
            return self.commit_entity(
                run_id, staged, entity_type, ext, mime, meta, existing=existing
            )
        finally:
            self.discard(staged)
