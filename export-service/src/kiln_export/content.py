"""What goes into an export: which runs (selection) and, per run, which files, plus the
index rows and RO-Crate entities that describe them. Domain code: no FastAPI, no NATS."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln_contracts.exports import ExportFilter
from kiln_contracts.layout import (
    METADATA_FILE,
    InvalidFilenameError,
    parse_entity_filename,
    run_relpath,
)
from kiln_contracts.records import Entity, RunRecord, RunStatus
from kiln_storage.scan import RunRecordUnreadableError, iter_run_ids, read_run_record

from kiln_export.bag import Spool


@dataclass
class Selection:
    run_ids: list[str] = field(default_factory=list)
    skipped_in_progress: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def matches(record: RunRecord, wanted: ExportFilter) -> bool:
    request = record.request
    return (
        (wanted.device_id is None or request.device_id == wanted.device_id)
        and (wanted.session_id is None or request.session_id == wanted.session_id)
        and (wanted.workflow is None or request.workflow == wanted.workflow)
        and (wanted.status is None or record.status == wanted.status)
    )


def select_runs(root: Path, wanted: ExportFilter) -> Selection:
    """Runs that match, in id (creation) order. Runs not yet final are listed, not taken:
    their folder is still changing. Named runs that are not on storage (deleted, or never
    made) are listed as missing."""
    selection = Selection()
    if wanted.run_ids is not None:
        candidates: Iterator[str] = iter(sorted(set(wanted.run_ids)))
    else:
        candidates = iter_run_ids(root, wanted.since, wanted.until)
    for run_id in candidates:
        record = read_run_record(root, run_id)
        if record is None:
            if wanted.run_ids is not None:
                selection.missing.append(run_id)
            continue
        if not matches(record, wanted):
            continue
        if not record.status.is_final:
            selection.skipped_in_progress.append(run_id)
            continue
        selection.run_ids.append(run_id)
    return selection


@dataclass(frozen=True)
class RunContent:
    """One run as it will be archived: the record's exact bytes and the files to include."""

    run_id: str
    relpath: str  # runs/{day}/{run_id}, relative to the storage root and to the bag's data/
    metadata_bytes: bytes
    record: RunRecord
    files: list[Entity]
    blocked_left_out: list[Entity]

    def source(self, root: Path, entity: Entity) -> Path:
        return root / self.relpath / entity.filename


def load_run(root: Path, run_id: str, include_blocked: bool) -> RunContent | None:
    """Read the record once, as bytes, so the archived ``metadata.json`` is exactly the one
    whose checksums are verified. None when the run has been deleted since selection."""
    relpath = run_relpath(run_id).as_posix()
    try:
        raw = (root / relpath / METADATA_FILE).read_bytes()
    except FileNotFoundError:
        return None
    try:
        record = RunRecord.model_validate_json(raw)
    except ValueError as exc:
        raise RunRecordUnreadableError(run_id, str(exc)[:300]) from exc
    files: list[Entity] = []
    blocked: list[Entity] = []
    for entity in sorted(record.entities, key=lambda e: e.seq):
        # A name from metadata.json is validated before it becomes a path.
        try:
            parse_entity_filename(entity.filename)
        except InvalidFilenameError as exc:
            raise RunRecordUnreadableError(run_id, str(exc)) from exc
        if entity.blocked is not None and not include_blocked:
            blocked.append(entity)
        else:
            files.append(entity)
    return RunContent(run_id, relpath, raw, record, files, blocked)


def is_output(entity: Entity) -> bool:
    return entity.type.startswith("output")


def index_row(run: RunContent) -> dict[str, Any]:
    record = run.record
    request = record.request
    return {
        "run_id": record.run_id,
        "created_at": record.created_at.isoformat(),
        "status": record.status.value,
        "device_id": request.device_id,
        "session_id": request.session_id,
        "workflow": request.workflow,
        "params": request.params,
        "input_text": request.input_text,
        "path": f"data/{run.relpath}",
        "outputs": [
            {
                "filename": e.filename,
                "type": e.type,
                "mime": e.mime,
                "size": e.size,
                "sha256": e.sha256,
            }
            for e in run.files
            if is_output(e)
        ],
        "blocked_left_out": [e.filename for e in run.blocked_left_out],
        "error_code": record.error.code.value if record.error else None,
        "error_message": record.error.message if record.error else None,
    }


INDEX_CSV_COLUMNS = [
    "run_id",
    "created_at",
    "status",
    "device_id",
    "session_id",
    "workflow",
    "params",
    "input_text",
    "path",
    "outputs",
    "blocked_left_out",
    "error_code",
    "error_message",
]


class IndexWriter:
    """``index.csv`` and ``index.json``, one row per run, spooled until the payload is done."""

    def __init__(self) -> None:
        self.csv = Spool()
        self.json = Spool()
        self._rows = 0
        self._csv_line(INDEX_CSV_COLUMNS)
        self.json.write(b"[")

    def _csv_line(self, values: list[Any]) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\r\n").writerow(values)
        self.csv.write(text.getvalue().encode("utf-8"))

    def add(self, row: dict[str, Any]) -> None:
        # Nested values (params, outputs) are JSON in the CSV: one cell, no loss.
        self._csv_line(
            [
                json.dumps(v, ensure_ascii=False, sort_keys=True)
                if isinstance(v, dict | list)
                else ("" if v is None else v)
                for v in (row[c] for c in INDEX_CSV_COLUMNS)
            ]
        )
        separator = b"\n" if self._rows == 0 else b",\n"
        self.json.write(separator + json.dumps(row, ensure_ascii=False).encode("utf-8"))
        self._rows += 1

    def close(self) -> None:
        self.json.write(b"\n]\n")


RO_CRATE_CONTEXT = "https://w3id.org/ro/crate/1.1/context"
RO_CRATE_SPEC = "https://w3id.org/ro/crate/1.1"
_ACTION_STATUS = {
    RunStatus.COMPLETED: "http://schema.org/CompletedActionStatus",
    RunStatus.FAILED: "http://schema.org/FailedActionStatus",
    RunStatus.CANCELLED: "http://schema.org/FailedActionStatus",
}


class RoCrateWriter:
    """``ro-crate-metadata.json`` at the root of the bag's payload (RO-Crate 1.1 in BagIt):
    each run is a CreateAction with its input (``object``), workflow (``instrument``) and
    outputs (``result``); each run folder is a Dataset. Entities are spooled as they come."""

    def __init__(self, name: str, description: str, date_published: str) -> None:
        self._root = {
            "@id": "./",
            "@type": "Dataset",
            "name": name,
            "description": description,
            "datePublished": date_published,
        }
        self._parts = Spool()
        self._mentions = Spool()
        self._entities = Spool()
        self._workflows: set[str] = set()

    def _entity(self, entity: dict[str, Any]) -> None:
        self._entities.write(b",\n" + json.dumps(entity, ensure_ascii=False).encode("utf-8"))

    @staticmethod
    def _ref(spool: Spool, ref: str) -> None:
        prefix = b"" if spool.size == 0 else b", "
        spool.write(prefix + json.dumps({"@id": ref}).encode())

    def _part(self, ref: str) -> None:
        self._ref(self._parts, ref)

    def _mention(self, ref: str) -> None:
        # RO-Crate 1.1: the root dataset mentions the actions that made its content.
        self._ref(self._mentions, ref)

    def add_file(self, path: str, mime: str, size: int, sha256: str, name: str) -> None:
        self._part(path)
        self._entity(
            {
                "@id": path,
                "@type": "File",
                "name": name,
                "encodingFormat": mime,
                "contentSize": str(size),
                "sha256": sha256,
            }
        )

    def add_run(self, run: RunContent, metadata_sha256: str) -> None:
        record = run.record
        folder = f"{run.relpath}/"
        workflow_id = f"#workflow/{record.request.workflow}"
        if record.request.workflow not in self._workflows:
            self._workflows.add(record.request.workflow)
            self._entity(
                {
                    "@id": workflow_id,
                    "@type": "SoftwareApplication",
                    "name": record.request.workflow,
                }
            )
        files = [f"{folder}{METADATA_FILE}", *(f"{folder}{e.filename}" for e in run.files)]
        self._part(folder)
        self._entity(
            {
                "@id": folder,
                "@type": "Dataset",
                "name": f"run {record.run_id}",
                "identifier": record.run_id,
                "hasPart": [{"@id": f} for f in files],
            }
        )
        self._entity(
            {
                "@id": f"{folder}{METADATA_FILE}",
                "@type": "File",
                "name": "run record",
                "encodingFormat": "application/json",
                "contentSize": str(len(run.metadata_bytes)),
                "sha256": metadata_sha256,
            }
        )
        for entity in run.files:
            self._entity(
                {
                    "@id": f"{folder}{entity.filename}",
                    "@type": "File",
                    "name": entity.filename,
                    "encodingFormat": entity.mime,
                    "contentSize": str(entity.size),
                    "sha256": entity.sha256,
                    "dateCreated": entity.created_at.isoformat(),
                }
            )
        action: dict[str, Any] = {
            "@id": f"#run/{record.run_id}",
            "@type": "CreateAction",
            "name": f"run {record.run_id}",
            "identifier": record.run_id,
            "startTime": record.created_at.isoformat(),
            "endTime": record.updated_at.isoformat(),
            "actionStatus": {
                "@id": _ACTION_STATUS.get(record.status, _ACTION_STATUS[RunStatus.FAILED])
            },
            "instrument": {"@id": workflow_id},
            "object": [{"@id": f"{folder}{e.filename}"} for e in run.files if not is_output(e)],
            "result": [{"@id": f"{folder}{e.filename}"} for e in run.files if is_output(e)],
            "description": record.request.input_text,
        }
        if record.error is not None:
            action["error"] = f"{record.error.code.value}: {record.error.message}"
        self._mention(f"#run/{record.run_id}")
        self._entity(action)

    def spool(self) -> Spool:
        """The whole document, assembled from the spools without holding it in memory."""
        out = Spool()
        descriptor = {
            "@id": "ro-crate-metadata.json",
            "@type": "CreativeWork",
            "conformsTo": {"@id": RO_CRATE_SPEC},
            "about": {"@id": "./"},
        }
        out.write(b'{"@context": "' + RO_CRATE_CONTEXT.encode() + b'",\n"@graph": [\n')
        out.write(json.dumps(descriptor).encode() + b",\n")
        root_head = json.dumps(self._root, ensure_ascii=False)[:-1].encode("utf-8")
        out.write(root_head + b', "hasPart": [')
        for chunk in self._parts.chunks():
            out.write(chunk)
        out.write(b'], "mentions": [')
        for chunk in self._mentions.chunks():
            out.write(chunk)
        out.write(b"]}")
        for chunk in self._entities.chunks():
            out.write(chunk)
        out.write(b"\n]}\n")
        return out
