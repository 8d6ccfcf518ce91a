"""Read-only walks over the storage root's run folders (docs/design.md §5.6), for readers such as
export-service. Nothing here writes, locks or caches: a folder seen is read as it is now.

The day folders (``runs/{YYYY-MM-DD}``) let a time window skip whole days without opening a
single ``metadata.json``; inside a day, folders are visited in id order (UUIDv7 sorts by time).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from kiln_contracts.ids import is_run_id, run_created_at
from kiln_contracts.layout import METADATA_FILE, RUNS_DIR, run_relpath
from kiln_contracts.records import RunRecord


class RunRecordUnreadableError(Exception):
    """A run folder whose ``metadata.json`` is missing or does not parse."""

    def __init__(self, run_id: str, reason: str) -> None:
        super().__init__(f"run {run_id}: metadata.json unreadable: {reason}")
        self.run_id = run_id


def _day(name: str) -> date | None:
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def iter_run_ids(
    root: Path, since: datetime | None = None, until: datetime | None = None
) -> Iterator[str]:
    """Every run id on the root whose id-encoded instant is in ``[since, until)``, oldest first.

    Staging folders (dot-prefixed) and anything that is not a run id are skipped, so a run
    being created is never seen half-made.
    """
    runs = root / RUNS_DIR
    if not runs.is_dir():
        return
    days = sorted((d, p) for p in runs.iterdir() if p.is_dir() and (d := _day(p.name)) is not None)
    for day, day_dir in days:
        if since is not None and day < since.date():
            continue
        if until is not None and day > until.date():
            continue
        for entry in sorted(day_dir.iterdir(), key=lambda p: p.name):
            if not is_run_id(entry.name) or not entry.is_dir():
                continue
            created = run_created_at(entry.name)
            if since is not None and created < since:
                continue
            if until is not None and created >= until:
                continue
            yield entry.name


def run_folder(root: Path, run_id: str) -> Path:
    return root / run_relpath(run_id)


def read_run_record(root: Path, run_id: str) -> RunRecord | None:
    """The run's record, or None when the folder is gone (a deleted run is not an error)."""
    path = run_folder(root, run_id) / METADATA_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return RunRecord.model_validate_json(raw)
    except ValueError as exc:
        raise RunRecordUnreadableError(run_id, str(exc)[:300]) from exc
