"""A listing index of the runs on a storage root, rebuilt from the run folders at any time.

It is never a second source of truth: every row is derived from one ``metadata.json`` and can be
thrown away. It holds only what a listing filters on (status, workflow, device, session); the
records themselves are always read from their folders. Run ids are UUIDv7, so ordering by id is
ordering by creation time, and a page boundary (cursor) is simply the last id of a page.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kiln_contracts.errors import ErrorCode, MappedError
from kiln_contracts.ids import InvalidRunIdError, parse_run_id

from kiln_storage.base import RunNotFoundError, RunStorage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    workflow TEXT NOT NULL,
    device_id TEXT,
    session_id TEXT,
    stamp TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, run_id);
CREATE INDEX IF NOT EXISTS runs_workflow ON runs (workflow, run_id);
CREATE INDEX IF NOT EXISTS runs_device ON runs (device_id, run_id);
CREATE INDEX IF NOT EXISTS runs_session ON runs (session_id, run_id);
"""
_CURSOR_PREFIX = "v1:"

logger = logging.getLogger("kiln.storage.index")


class InvalidCursorError(MappedError, ValueError):
    """A ``cursor`` that this index did not hand out."""

    code = ErrorCode.INVALID_CURSOR
    status_code = 400


@dataclass(frozen=True)
class RunFilter:
    status: str | None = None
    workflow: str | None = None
    device_id: str | None = None
    session_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class SyncReport:
    scanned: int
    refreshed: int
    removed: int
    seconds: float


def encode_cursor(run_id: str) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{run_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        if not text.startswith(_CURSOR_PREFIX):
            raise InvalidCursorError(f"not a listing cursor: {cursor!r}"[:200])
        return parse_run_id(text.removeprefix(_CURSOR_PREFIX))
    except (binascii.Error, UnicodeError, ValueError, InvalidRunIdError) as exc:
        if isinstance(exc, InvalidCursorError):
            raise
        raise InvalidCursorError(f"not a listing cursor: {cursor!r}"[:200]) from None


def run_id_bound(instant: datetime) -> str:
    """The smallest run id minted at ``instant`` (ms precision): ids compare as text in time
    order, so a time range is an id range."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    millis = max(0, int(instant.timestamp() * 1000))
    hex_ms = f"{millis:012x}"[-12:]
    return f"{hex_ms[:8]}-{hex_ms[8:]}-7000-8000-000000000000"


class RunIndex:
    """SQLite (a file under a service's own var dir, or memory), safe across threads."""

    def __init__(self, store: RunStorage, path: Path | None = None) -> None:
        self.store = store
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path) if path is not None else ":memory:",
            check_same_thread=False,
            isolation_level=None,
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")  # rebuildable: durability is not needed
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM runs").fetchone()
        return int(count)

    # -- keeping it true to the folders -----------------------------------------------------
    def _row_from_file(self, run_id: str) -> tuple[str, ...] | None:
        try:
            data, version = self.store.read_raw(run_id)
            raw = json.loads(data)
            request = raw["request"]
            return (
                run_id,
                str(raw["status"]),
                str(request["workflow"]),
                request.get("device_id"),
                request.get("session_id"),
                version,
            )
        except RunNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            # Unlisted until it is readable again; the run itself is untouched.
            logger.error(
                "metadata.json of run %s is unreadable, not listed: %s",
                run_id,
                exc,
                extra={"run_id": run_id},
            )
            return None

    def refresh(self, run_id: str) -> None:
        """Re-read one run's record into the index (or drop it if the run is gone)."""
        row = self._row_from_file(run_id)
        with self._lock:
            if row is None:
                self._db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            else:
                self._db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)", row)

    def sync(self, recent_days: int | None = None) -> SyncReport:
        """Bring the index in line with the folders: re-read records whose file changed (by
        inode and mtime, so only changed runs are parsed), drop rows of deleted runs.

        ``recent_days`` limits the scan to the day folders of the last days (where nearly all
        changes happen: a run is written while it runs); None scans the whole root.
        """
        started = time.perf_counter()
        first_day: str | None = None
        lower = "0"
        if recent_days is not None:
            since = datetime.now(UTC) - timedelta(days=recent_days)
            first_day = since.date().isoformat()
            lower = run_id_bound(datetime.fromisoformat(first_day).replace(tzinfo=UTC))
        with self._lock:
            known = dict(
                self._db.execute("SELECT run_id, stamp FROM runs WHERE run_id >= ?", (lower,))
            )
        seen: set[str] = set()
        changed: list[tuple[str, ...]] = []
        for run_id, current in self.store.scan_versions(first_day):
            seen.add(run_id)
            if known.get(run_id) != current:
                row = self._row_from_file(run_id)
                if row is not None:
                    changed.append(row)
        gone = [(run_id,) for run_id in known.keys() - seen]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)", changed)
            self._db.executemany("DELETE FROM runs WHERE run_id = ?", gone)
            self._db.execute("COMMIT")
        return SyncReport(len(seen), len(changed), len(gone), time.perf_counter() - started)

    def rebuild(self) -> SyncReport:
        """Throw the index away and build it again from the run folders."""
        with self._lock:
            self._db.execute("DELETE FROM runs")
        return self.sync()

    # -- asking it ---------------------------------------------------------------------------
    def query(self, where: RunFilter, limit: int, after: str | None = None) -> list[str]:
        """Run ids matching ``where``, newest first, strictly older than ``after``."""
        return [run_id for run_id, _ in self.query_stamped(where, limit, after)]

    def query_stamped(
        self, where: RunFilter, limit: int, after: str | None = None
    ) -> list[tuple[str, str]]:
        """Like ``query``, with the version of the ``metadata.json`` each row was read from."""
        clauses: list[str] = []
        args: list[object] = []
        for column in ("status", "workflow", "device_id", "session_id"):
            value = getattr(where, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if where.since is not None:
            clauses.append("run_id >= ?")
            args.append(run_id_bound(where.since))
        if where.until is not None:
            clauses.append("run_id < ?")
            args.append(run_id_bound(where.until))
        if after is not None:
            clauses.append("run_id < ?")
            args.append(after)
        sql = "SELECT run_id, stamp FROM runs"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY run_id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            return [(row[0], row[1]) for row in self._db.execute(sql, args).fetchall()]
