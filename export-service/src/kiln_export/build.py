"""Building one export: selected runs → BagIt bag → archive → sink, in one pass.

Every file's bytes are checked against the sha256 and size in its run's ``metadata.json``
while they stream; a mismatch stops the export with an error naming the run and the file.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kiln_contracts.exports import ExportFormat, ExportRequest
from kiln_contracts.layout import METADATA_FILE
from kiln_contracts.records import Entity, utc_now

from kiln_export.archive import ArchiveWriter, Sink, SizeMismatchError, TarGzWriter, ZipWriter
from kiln_export.bag import BagWriter, ChecksumMismatchError
from kiln_export.content import (
    IndexWriter,
    RoCrateWriter,
    RunContent,
    Selection,
    index_row,
    load_run,
)

CHUNK_SIZE = 1 << 20


class IntegrityError(Exception):
    """A stored file is not what its run's record says it is (or is gone)."""

    def __init__(self, run_id: str, filename: str, reason: str) -> None:
        super().__init__(f"run {run_id}, file {filename}: {reason}")
        self.run_id = run_id
        self.filename = filename


class BuildStoppedError(Exception):
    """The service is shutting down; the job goes back to the queue for another process."""


class Throttle:
    """An optional read budget in bytes per second, so a large export cannot starve media
    serving on the same volume."""

    def __init__(self, bytes_per_second: int | None) -> None:
        self.rate = bytes_per_second
        self.started = time.monotonic()
        self.consumed = 0

    def take(self, amount: int) -> None:
        if not self.rate:
            return
        self.consumed += amount
        ahead = self.consumed / self.rate - (time.monotonic() - self.started)
        if ahead > 0:
            time.sleep(ahead)


def archive_writer(fmt: ExportFormat, sink: Sink) -> ArchiveWriter:
    return ZipWriter(sink) if fmt is ExportFormat.ZIP else TarGzWriter(sink)


def archive_name(export_id: str, fmt: ExportFormat) -> str:
    return f"kiln-export-{export_id}.{fmt.value}"


@dataclass
class BuildResult:
    runs_written: int = 0
    payload_bytes: int = 0
    payload_files: int = 0
    blocked_left_out: int = 0
    deleted_meanwhile: list[str] = field(default_factory=list)


ProgressCallback = Callable[[int], None]  # runs done so far


def _file_chunks(path: Path, throttle: Throttle, stop: threading.Event | None) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            if stop is not None and stop.is_set():
                raise BuildStoppedError(str(path))
            throttle.take(len(chunk))
            yield chunk


def _add_entity(
    bag: BagWriter,
    root: Path,
    run: RunContent,
    entity: Entity,
    throttle: Throttle,
    stop: threading.Event | None,
) -> None:
    source = run.source(root, entity)
    try:
        bag.add_payload(
            f"{run.relpath}/{entity.filename}",
            entity.size,
            entity.created_at,
            _file_chunks(source, throttle, stop),
            expected_sha256=entity.sha256,
        )
    except FileNotFoundError:
        raise IntegrityError(
            run.run_id, entity.filename, "listed in metadata.json but missing"
        ) from None
    except ChecksumMismatchError as exc:
        raise IntegrityError(
            run.run_id,
            entity.filename,
            f"sha256 {exc.actual} does not match metadata.json ({exc.expected})",
        ) from None
    except SizeMismatchError as exc:
        raise IntegrityError(
            run.run_id,
            entity.filename,
            f"{exc.actual}+ bytes on disk, metadata.json says {exc.expected}",
        ) from None


def build_export(
    root: Path,
    export_id: str,
    request: ExportRequest,
    selection: Selection,
    sink: Sink,
    on_run_done: ProgressCallback | None = None,
    bytes_per_second: int | None = None,
    now: datetime | None = None,
    stop: threading.Event | None = None,
    mark_failure: bool = False,
) -> BuildResult:
    """With ``mark_failure`` (a stream already on its way to a client, which cannot be
    recalled), an integrity failure ends the archive with ``EXPORT-FAILED.txt`` naming the run
    and file, and without the records that would make the archive readable as complete."""
    started = now or utc_now()
    throttle = Throttle(bytes_per_second)
    top = archive_name(export_id, request.format).removesuffix(f".{request.format.value}")
    bag = BagWriter(archive_writer(request.format, sink), top, started)
    index = IndexWriter()
    crate = RoCrateWriter(
        name=f"kiln export {export_id}",
        description="Runs recorded by kiln: each run folder as stored, with its record.",
        date_published=started.isoformat(),
    )
    result = BuildResult()
    blocked_files: list[str] = []
    for run_id in selection.run_ids:
        run = load_run(root, run_id, request.include.blocked)
        if run is None:
            result.deleted_meanwhile.append(run_id)
            continue
        metadata_sha256 = bag.add_payload(
            f"{run.relpath}/{METADATA_FILE}",
            len(run.metadata_bytes),
            run.record.updated_at,
            [run.metadata_bytes],
        )
        try:
            for entity in run.files:
                _add_entity(bag, root, run, entity, throttle, stop)
        except IntegrityError as exc:
            if mark_failure:
                note = f"This export FAILED and is incomplete.\n{exc}\n".encode()
                bag.archive.abandon(f"{top}/EXPORT-FAILED.txt", note, utc_now())
            raise
        blocked_files += [f"data/{run.relpath}/{e.filename}" for e in run.blocked_left_out]
        index.add(index_row(run))
        crate.add_run(run, metadata_sha256)
        result.runs_written += 1
        if on_run_done is not None:
            on_run_done(result.runs_written)

    index.close()
    index_csv = bag.add_payload_spool("index.csv", index.csv)
    crate.add_file("index.csv", "text/csv", index.csv.size, index_csv, "one row per run")
    index_json = bag.add_payload_spool("index.json", index.json)
    crate.add_file("index.json", "application/json", index.json.size, index_json, "one row per run")
    bag.add_payload_spool("ro-crate-metadata.json", crate.spool())

    result.blocked_left_out = len(blocked_files)
    result.payload_bytes = bag.payload_bytes
    result.payload_files = bag.payload_files
    info: list[tuple[str, str]] = [
        ("Source-Organization", "kiln"),
        ("External-Description", f"kiln research export {export_id}: {result.runs_written} runs"),
        ("External-Identifier", export_id),
        ("Bag-Size", f"{bag.payload_bytes} bytes"),
        (
            "Kiln-Export-Filter",
            json.dumps(request.filter.model_dump(mode="json", exclude_none=True)),
        ),
        ("Kiln-Runs", str(result.runs_written)),
        (
            "Kiln-Blocked-Media",
            "included on request"
            if request.include.blocked
            else f"left out ({len(blocked_files)} files)",
        ),
        *(("Kiln-Blocked-File-Left-Out", path) for path in blocked_files),
        *(("Kiln-Run-Skipped-In-Progress", run_id) for run_id in selection.skipped_in_progress),
        *(
            ("Kiln-Run-Missing", run_id)
            for run_id in [*selection.missing, *result.deleted_meanwhile]
        ),
    ]
    bag.finish(info)
    return result
