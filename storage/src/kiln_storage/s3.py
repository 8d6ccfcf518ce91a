"""The storage root on S3 (``KILN_STORAGE_URL=s3://bucket/prefix``), through boto3.

Same layout as keys as on a local volume. There are no locks on S3, so every change is a
conditional write: ``metadata.json`` is replaced only if its ETag is still the one that was read
(``If-Match``), and objects are created only if absent (``If-None-Match: *``), so no writer ever
overwrites another's bytes. The record update decides who gets a sequence number: a writer that
lost the race re-reads, gives up its object if the number is gone and tries the next one, so no
number is listed twice and no entity is lost.
"""

from __future__ import annotations

import json
import random
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from kiln_contracts.ids import is_run_id, parse_run_id
from kiln_contracts.layout import (
    METADATA_FILE,
    RUNS_DIR,
    STORAGE_ID_FILE,
    parse_entity_filename,
    run_relpath,
)
from kiln_contracts.records import Entity, RunRecord, RunRequest, utc_now

from kiln_storage.base import (
    CHUNK_SIZE,
    EntityMissingError,
    EntityNotFoundError,
    RunExistsError,
    RunNotFoundError,
    RunStorage,
    StagedFile,
    StagingWriter,
    StorageError,
    deletion_entry,
    dump_record,
    new_entity,
    new_record,
    with_block,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

AUDIT_PREFIX = "audit/deletions/"
DELETING_MARKER = ".deleting"
MAX_ATTEMPTS = 50


class ConflictError(StorageError):
    """A conditional write kept losing to other writers."""


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/prefix``: where a storage root or export archives live on S3."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
        return cls(parts.netloc, parts.path.strip("/"))

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name


def s3_client(
    endpoint_url: str | None = None,
    *,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    max_attempts: int | None = None,
) -> S3Client:
    """The one way kiln makes an S3 client: path-style addressing (what S3-compatible stores
    such as SeaweedFS expect) and standard retries. What is not given comes from the standard
    AWS environment (keys, region, AWS_ENDPOINT_URL)."""
    retries: dict[str, Any] = {"mode": "standard"}
    if max_attempts is not None:
        retries["max_attempts"] = max_attempts
    config = Config(s3={"addressing_style": "path"}, retries=retries)  # type: ignore[arg-type]
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )
    return client


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _precondition_failed(exc: ClientError) -> bool:
    return _status(exc) in (409, 412) or _code(exc) in (
        "PreconditionFailed",
        "ConditionalRequestConflict",
    )


def _missing(exc: ClientError) -> bool:
    return _status(exc) == 404 or _code(exc) in ("NoSuchKey", "404", "NotFound")


def _backoff(attempt: int) -> None:
    time.sleep(min(0.2, 0.005 * 2**attempt) * random.random())  # noqa: S311 - jitter only


class S3RunStore(RunStorage):
    """The same public methods as ``kiln_storage.local.RunStore``, on S3."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "", spool: Path | None = None):
        self.client = client
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        # Incoming bytes are staged on local disk, hashed as they arrive, then uploaded once.
        self.spool = spool or Path(tempfile.gettempdir()) / "kiln-s3-spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        self.listeners: list[Callable[[str], None]] = []
        self._thread_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @classmethod
    def from_url(
        cls, url: str, client: S3Client | None = None, spool: Path | None = None
    ) -> S3RunStore:
        location = S3Location.parse(url)
        return cls(client or s3_client(), location.bucket, location.prefix, spool)

    def _changed(self, run_id: str) -> None:
        for listener in self.listeners:
            listener(run_id)

    # -- keys --------------------------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return self.prefix + "/".join(parts)

    def run_key(self, run_id: str, name: str) -> str:
        return self._key(str(run_relpath(run_id)), name)

    def _get(self, key: str) -> tuple[bytes, str]:
        response = self.client.get_object(Bucket=self.bucket, Key=key)
        return response["Body"].read(), response["ETag"]

    def _create(self, key: str, body: bytes | Any) -> bool:
        """Create ``key`` only if it does not exist; False if it does."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as exc:
            if _precondition_failed(exc):
                return False
            raise
        return True

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def remove_crash_debris(self, grace_seconds: float) -> list[str]:
        """On S3 an object appears whole (one PUT), so the root holds no debris; a crash
        leaves only staged outputs (``.incoming.*.tmp``) in the local spool. Those older
        than ``grace_seconds`` are removed (younger ones may belong to a live writer)."""
        cutoff = time.time() - grace_seconds
        removed: list[str] = []
        for item in self.spool.glob(".incoming.*.tmp"):
            try:
                if item.is_file() and item.lstat().st_mtime < cutoff:
                    item.unlink()
                    removed.append(str(item))
            except FileNotFoundError:
                continue
        return removed

    # -- the root ----------------------------------------------------------------------------
    def ensure_storage_id(self) -> str:
        key = self._key(STORAGE_ID_FILE)
        self._create(key, (str(uuid.uuid4()) + "\n").encode())
        return self.read_storage_id()

    def read_storage_id(self) -> str:
        storage_id = self._get(self._key(STORAGE_ID_FILE))[0].decode().strip()
        uuid.UUID(storage_id)
        return storage_id

    # -- records -----------------------------------------------------------------------------
    def create_run(self, run_id: str, request: RunRequest) -> RunRecord:
        """The input first, then the record, each created only if absent: a second creator
        fails at the first step and never overwrites anything."""
        parse_run_id(run_id)
        record, input_name, input_bytes = new_record(run_id, request, utc_now())
        if not self._create(self.run_key(run_id, input_name), input_bytes):
            self._wait_for_record(run_id)  # so a caller reading it next finds it
            raise RunExistsError(run_id)
        if not self._create(self.run_key(run_id, METADATA_FILE), dump_record(record)):
            raise RunExistsError(run_id)
        self._changed(run_id)
        return record

    def _wait_for_record(self, run_id: str, seconds: float = 5) -> None:
        """Another creator wrote the input and is about to write the record: give it a moment.
        (A creator that died in between leaves no record; the run id is then spent.)"""
        deadline = time.monotonic() + seconds
        key = self.run_key(run_id, METADATA_FILE)
        while not self._exists(key) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _read_tagged(self, run_id: str) -> tuple[RunRecord, str]:
        try:
            raw, etag = self._get(self.run_key(run_id, METADATA_FILE))
        except ClientError as exc:
            if _missing(exc):
                raise RunNotFoundError(run_id) from None
            raise
        return RunRecord.model_validate_json(raw), etag

    def read(self, run_id: str) -> RunRecord:
        return self._read_tagged(parse_run_id(run_id))[0]

    def read_raw(self, run_id: str) -> tuple[bytes, str]:
        """``metadata.json`` as stored, with its version (the ETag)."""
        try:
            return self._get(self.run_key(parse_run_id(run_id), METADATA_FILE))
        except ClientError as exc:
            if _missing(exc):
                raise RunNotFoundError(run_id) from None
            raise

    def scan_versions(self, first_day: str | None = None) -> Iterator[tuple[str, str]]:
        """(run id, record ETag) of every run, or of the runs of ``first_day`` and later,
        from listings alone."""
        for day in self._prefixes(self._key(RUNS_DIR) + "/"):
            if first_day is None or day >= first_day:
                yield from self._day_versions(day)

    def _day_versions(self, day: str) -> Iterator[tuple[str, str]]:
        folder = f"{self._key(RUNS_DIR)}/{day}/"
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=folder):
            for obj in page.get("Contents", []):
                run_id, _, name = obj["Key"][len(folder) :].partition("/")
                if name == METADATA_FILE and is_run_id(run_id):
                    yield run_id, obj["ETag"]

    def _replace(self, run_id: str, record: RunRecord, etag: str) -> bool:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.run_key(run_id, METADATA_FILE),
                Body=dump_record(record),
                IfMatch=etag,
                ContentType="application/json",
            )
        except ClientError as exc:
            if _precondition_failed(exc):
                return False
            raise
        return True

    def _lock(self, run_id: str) -> threading.Lock:
        # Writers in one process queue up instead of racing; across processes the
        # conditional writes decide.
        with self._guard:
            return self._thread_locks.setdefault(run_id, threading.Lock())

    def update(self, run_id: str, change: Callable[[RunRecord], RunRecord | None]) -> RunRecord:
        """Read-modify-write with ``If-Match``: ``change`` runs again on the newer record when
        another writer got there first."""
        with self._lock(run_id):
            for attempt in range(MAX_ATTEMPTS):
                current, etag = self._read_tagged(run_id)
                updated = change(current)
                if updated is None:
                    return current
                updated = updated.model_copy(update={"updated_at": utc_now()})
                if self._replace(run_id, updated, etag):
                    self._changed(run_id)
                    return updated
                _backoff(attempt)
        raise ConflictError(f"metadata.json of run {run_id} kept changing; gave up")

    # -- entities ----------------------------------------------------------------------------
    def open_staging(self, run_id: str) -> StagingWriter:
        if not self._exists(self.run_key(parse_run_id(run_id), METADATA_FILE)):
            raise RunNotFoundError(run_id)
        return StagingWriter(self.spool)

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
        """Create the entity's object under the next number, then list it in the record with
        ``If-Match``; on a lost race, re-read and go again (keeping the object if its number
        is still the next one)."""
        claimed: Entity | None = None
        with self._lock(run_id):
            for attempt in range(MAX_ATTEMPTS):
                record, etag = self._read_tagged(run_id)
                if existing is not None and (found := existing(record)) is not None:
                    self._release(run_id, claimed)
                    return found
                seq = record.next_seq()
                if claimed is None or claimed.seq != seq:
                    self._release(run_id, claimed)
                    claimed = None
                    entity = new_entity(seq, entity_type, ext, mime, staged, meta)
                    with staged.path.open("rb") as body:
                        if not self._create(self.run_key(run_id, entity.filename), body):
                            _backoff(attempt)  # another writer holds this number
                            continue
                    claimed = entity
                updated = record.model_copy(update={"entities": [*record.entities, claimed]})
                if change is not None:
                    updated = change(updated, claimed)
                updated = updated.model_copy(update={"updated_at": utc_now()})
                if self._replace(run_id, updated, etag):
                    self._changed(run_id)
                    return claimed
                _backoff(attempt)
        self._release(run_id, claimed)
        raise ConflictError(f"could not list a new entity in run {run_id}; gave up")

    def _release(self, run_id: str, claimed: Entity | None) -> None:
        if claimed is not None:
            self.client.delete_object(
                Bucket=self.bucket, Key=self.run_key(run_id, claimed.filename)
            )

    def set_blocked(self, run_id: str, filename: str, reason: str | None) -> Entity:
        parse_entity_filename(filename)
        found: list[Entity] = []

        def change(record: RunRecord) -> RunRecord | None:
            changed, entity = with_block(record, run_id, filename, reason)
            found.append(entity)
            return changed

        self.update(run_id, change)
        return found[-1]

    # -- reading -----------------------------------------------------------------------------
    def _prefixes(self, prefix: str) -> list[str]:
        names = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(prefix) :].rstrip("/"))
        return names

    def iter_run_ids(self) -> Iterator[str]:
        """Every run on the root, newest day first. A run is a folder with a record: emptied
        folders may linger as prefixes on some S3 implementations, so records are listed."""
        runs = self._key(RUNS_DIR) + "/"
        for day in sorted(self._prefixes(runs), reverse=True):
            yield from sorted((run_id for run_id, _ in self._day_versions(day)), reverse=True)

    def entity(self, run_id: str, filename: str) -> Entity:
        parse_entity_filename(filename)
        entity = self.read(run_id).entity(filename)
        if entity is None:
            raise EntityNotFoundError(run_id, filename)
        return entity

    def iter_entity(self, run_id: str, filename: str) -> Iterator[bytes]:
        """An entity's bytes in chunks, streamed from S3 (never whole in memory)."""
        entity = self.entity(run_id, filename)
        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=self.run_key(run_id, entity.filename)
            )
        except ClientError as exc:
            if _missing(exc):
                raise EntityMissingError(run_id, filename, "on S3") from None
            raise
        yield from response["Body"].iter_chunks(CHUNK_SIZE)

    def iter_range(self, run_id: str, filename: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive) of an entity, streamed (for HTTP Range)."""
        key = self.run_key(parse_run_id(run_id), parse_entity_filename(filename))
        response = self.client.get_object(
            Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}"
        )
        yield from response["Body"].iter_chunks(CHUNK_SIZE)

    # -- deletion ----------------------------------------------------------------------------
    def delete_run(self, run_id: str, reason: str, actor: str, detail: dict[str, Any]) -> bool:
        """Claim the deletion (one marker, created once), remove the record so readers see no
        run, write the audit entry, then remove the rest. False if there was no such run or
        another replica is deleting it."""
        try:
            record = self.read(run_id)
        except RunNotFoundError:
            return False
        if not self._create(self.run_key(run_id, DELETING_MARKER), b""):
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self.run_key(run_id, METADATA_FILE))
        self.append_audit(deletion_entry(record, reason, actor, detail))
        self._changed(run_id)
        folder = self.run_key(run_id, "")
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=folder):
            keys: list[ObjectIdentifierTypeDef] = [
                {"Key": obj["Key"]} for obj in page.get("Contents", [])
            ]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
        return True

    def append_audit(self, entry: dict[str, Any]) -> None:
        """S3 has no append: each entry is its own object, created once and never replaced;
        names sort by time, so the prefix reads as the log."""
        name = f"{utc_now().strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:12]}.json"
        body = json.dumps(entry, ensure_ascii=False, sort_keys=True).encode()
        if not self._create(self._key(AUDIT_PREFIX + name), body):
            raise StorageError(f"audit entry {name} exists already")

    def read_audit(self) -> list[dict[str, Any]]:
        prefix = self._key(AUDIT_PREFIX)
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return [json.loads(self._get(key)[0]) for key in sorted(keys)]
