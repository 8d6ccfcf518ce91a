"""Listing, blocking and deleting runs. Domain logic: no FastAPI, no NATS.

Listing asks the index (rebuildable, never the truth) which runs match, then reads each of
them from its folder, so what a page shows is always the record itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import anyio
from kiln_contracts.api import DeletionReport
from kiln_contracts.errors import ErrorCode, MappedError
from kiln_contracts.records import Entity, RunRecord, utc_now
from kiln_storage.base import (
    EntityNotFoundError,
    RunNotFoundError,
    RunStorage,
    StorageError,
)
from kiln_storage.index import (
    RunFilter,
    RunIndex,
    SyncReport,
    decode_cursor,
    encode_cursor,
)
from kiln_storage.local import RunStore
from kiln_storage.s3 import S3RunStore

logger = logging.getLogger("kiln.media.catalog")

MEDIA_KINDS = ("image", "audio", "video")


@dataclass(frozen=True)
class StoredFile:
    """An entity to serve: with a local path the server sends the file itself (sendfile or
    pathsend); without one (S3) it is streamed through ``RunCatalog.stream``."""

    run_id: str
    entity: Entity
    path: Path | None


class UnknownMediaKindError(MappedError, ValueError):
    code = ErrorCode.NOT_FOUND
    status_code = 404

    def __init__(self, kind: str) -> None:
        super().__init__(f"no media kind {kind!r}; one of {', '.join(MEDIA_KINDS)}"[:200])


@dataclass(frozen=True)
class Deletion:
    """Why and by whom runs are deleted; written into every audit line."""

    reason: str
    actor: str


def _matches(record: RunRecord, where: RunFilter) -> bool:
    request = record.request
    return (
        (where.status is None or record.status.value == where.status)
        and (where.workflow is None or request.workflow == where.workflow)
        and (where.device_id is None or request.device_id == where.device_id)
        and (where.session_id is None or request.session_id == where.session_id)
    )


class RunCatalog:
    def __init__(self, store: RunStorage, index: RunIndex, instance_id: str) -> None:
        self.store = store
        self.index = index
        self.instance_id = instance_id
        store.listeners.append(index.refresh)

    # -- listing -----------------------------------------------------------------------------
    def _page(self, where: RunFilter, limit: int, cursor: str | None) -> bytes:
        """A RunPage as JSON. Each item is its ``metadata.json`` as stored: when the file is
        the one the index row was read from (same stamp), the row's fields are the file's, so
        the filter holds without parsing it; otherwise the row is refreshed and checked."""
        after = decode_cursor(cursor) if cursor else None
        rows = self.index.query_stamped(where, limit + 1, after)
        page, more = rows[:limit], len(rows) > limit
        items: list[bytes] = []
        for run_id, indexed in page:
            try:
                raw, version = self.store.read_raw(run_id)
            except RunNotFoundError:
                self.index.refresh(run_id)  # deleted by another replica since the last sync
                continue
            if version != indexed:
                self.index.refresh(run_id)  # changed by another replica since the last sync
                if not _matches(RunRecord.model_validate_json(raw), where):
                    continue
            items.append(raw.strip())
        next_cursor = encode_cursor(page[-1][0]) if more else None
        return b'{"items":[%s],"next_cursor":%s}' % (
            b",".join(items),
            json.dumps(next_cursor).encode(),
        )

    async def list_runs(self, where: RunFilter, limit: int, cursor: str | None) -> bytes:
        return await anyio.to_thread.run_sync(self._page, where, limit, cursor)

    async def sync_index(self, recent_days: int | None = None) -> SyncReport:
        return await anyio.to_thread.run_sync(self.index.sync, recent_days)

    # -- serving -----------------------------------------------------------------------------
    def _file(self, run_id: str, filename: str) -> StoredFile:
        if isinstance(self.store, RunStore):
            path, entity = self.store.entity_path(run_id, filename)
            return StoredFile(run_id, entity, path)
        return StoredFile(run_id, self.store.entity(run_id, filename), None)

    def stream(self, stored: StoredFile, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive) of a file the server cannot send itself."""
        if not isinstance(self.store, S3RunStore):
            raise StorageError(f"{stored.entity.filename} has a path; serve the file")
        return self.store.iter_range(stored.run_id, stored.entity.filename, start, end)

    def _media(self, kind: str, run_id: str, index: int | None) -> StoredFile:
        if kind not in MEDIA_KINDS:
            raise UnknownMediaKindError(kind)
        record = self.store.read(run_id)
        outputs = sorted(
            (e for e in record.entities if e.type == f"output_{kind}"), key=lambda e: e.seq
        )
        if not outputs or (index is not None and not 0 <= index < len(outputs)):
            which = "" if index is None else f" number {index}"
            raise EntityNotFoundError(
                run_id, f"{kind} output{which} (the run has {len(outputs)} {kind} outputs)"
            )
        entity = outputs[-1] if index is None else outputs[index]
        return self._file(run_id, entity.filename)

    async def media(self, kind: str, run_id: str, index: int | None) -> StoredFile:
        """The newest output of a kind, or the ``index``-th (0-based, in the order stored)."""
        return await anyio.to_thread.run_sync(self._media, kind, run_id, index)

    async def entity_file(self, run_id: str, filename: str) -> StoredFile:
        return await anyio.to_thread.run_sync(self._file, run_id, filename)

    async def set_blocked(self, run_id: str, filename: str, reason: str | None) -> Entity:
        entity = await anyio.to_thread.run_sync(self.store.set_blocked, run_id, filename, reason)
        logger.info(
            "%s %s", "blocked" if reason else "unblocked", filename, extra={"run_id": run_id}
        )
        return entity

    # -- deleting ----------------------------------------------------------------------------
    def _delete(self, run_ids: list[str], why: Deletion, detail: dict[str, str]) -> list[str]:
        deleted = []
        for run_id in run_ids:
            if self.store.delete_run(run_id, why.reason, why.actor, detail):
                logger.info("deleted run (%s)", why.reason, extra={"run_id": run_id})
                deleted.append(run_id)
        return deleted

    async def delete_run(self, run_id: str, why: Deletion) -> DeletionReport:
        deleted = await anyio.to_thread.run_sync(self._delete, [run_id], why, {})
        if not deleted:
            raise RunNotFoundError(run_id)
        return DeletionReport(deleted=deleted)

    def _delete_matching(self, where: RunFilter, why: Deletion) -> list[str]:
        # The folders are the truth: sync first so runs another replica just created count.
        self.index.sync()
        matching: list[str] = []
        after: str | None = None
        while batch := self.index.query(where, 1000, after):
            matching.extend(batch)
            after = batch[-1]
        detail = {k: v for k in ("device_id", "session_id") if (v := getattr(where, k))}
        return self._delete(matching, why, detail)

    async def delete_matching(self, where: RunFilter, why: Deletion) -> DeletionReport:
        deleted = await anyio.to_thread.run_sync(self._delete_matching, where, why)
        return DeletionReport(deleted=deleted)

    async def apply_retention(self, days: int) -> DeletionReport:
        """Delete every run created more than ``days`` days ago."""
        cutoff = utc_now() - timedelta(days=days)
        why = Deletion(reason=f"retention ({days} days)", actor=self.instance_id)
        return await self.delete_matching(RunFilter(until=cutoff), why)


class InvalidInstantError(MappedError, ValueError):
    code = ErrorCode.INVALID_REQUEST
    status_code = 400


def parse_instant(value: str) -> datetime:
    """ISO-8601 with a zone; a naive time is refused rather than guessed."""
    try:
        instant = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInstantError(f"since/until: {exc}") from None
    if instant.tzinfo is None:
        raise InvalidInstantError(f"since/until: {value!r} has no time zone (add Z or +00:00)")
    return instant
