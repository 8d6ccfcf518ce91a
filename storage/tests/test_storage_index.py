from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import uuid_utils
from kiln_contracts.ids import run_created_at
from kiln_contracts.records import RunRecord, RunRequest, RunStatus
from kiln_storage.index import (
    InvalidCursorError,
    RunFilter,
    RunIndex,
    decode_cursor,
    encode_cursor,
    run_id_bound,
)
from kiln_storage.local import RunStore


def run_id_at(instant: datetime) -> str:
    """The id the gateway would have minted at ``instant``."""
    return str(uuid_utils.uuid7(nanoseconds=int(instant.timestamp() * 1000) * 1_000_000))


def make_runs(store: RunStore, count: int, start: datetime) -> list[str]:
    ids = []
    for n in range(count):
        run_id = run_id_at(start + timedelta(minutes=n))
        request = RunRequest(
            workflow="noise" if n % 2 else "sd15",
            input_text=f"run {n}",
            device_id=f"device-{n % 3}",
            session_id=f"session-{n % 4}",
        )
        store.create_run(run_id, request)
        ids.append(run_id)
    return ids


START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_run_id_bounds_order_like_time() -> None:
    run_id = run_id_at(START)
    assert run_created_at(run_id) == START
    assert run_id_bound(START) <= run_id < run_id_bound(START + timedelta(milliseconds=1))


def test_listing_is_newest_first_with_stable_cursors(store: RunStore) -> None:
    ids = make_runs(store, 12, START)
    index = RunIndex(store)
    report = index.sync()
    assert (report.scanned, report.refreshed, report.removed) == (12, 12, 0)
    newest_first = sorted(ids, reverse=True)
    first = index.query(RunFilter(), 5)
    assert first == newest_first[:5]
    # A run created after the first page does not shift the next one.
    make_runs(store, 1, START + timedelta(days=1))
    index.sync()
    second = index.query(RunFilter(), 5, decode_cursor(encode_cursor(first[-1])))
    assert second == newest_first[5:10]


def test_filters(store: RunStore) -> None:
    ids = make_runs(store, 12, START)
    index = RunIndex(store)
    index.sync()
    assert index.query(RunFilter(device_id="device-1"), 50) == sorted(ids[1::3], reverse=True)
    assert index.query(RunFilter(session_id="session-2", workflow="sd15"), 50) == sorted(
        ids[2::4], reverse=True
    )
    window = RunFilter(since=START + timedelta(minutes=3), until=START + timedelta(minutes=6))
    assert index.query(window, 50) == sorted(ids[3:6], reverse=True)
    assert index.query(RunFilter(status="completed"), 50) == []


def test_the_index_follows_writes_and_deletions_and_rebuilds(store: RunStore) -> None:
    ids = make_runs(store, 4, START)
    index = RunIndex(store)
    store.listeners.append(index.refresh)
    index.sync()

    def complete(record: RunRecord) -> RunRecord:
        return record.model_copy(update={"status": RunStatus.COMPLETED})

    store.update(ids[0], complete)
    assert index.query(RunFilter(status="completed"), 50) == [ids[0]]
    store.delete_run(ids[1], "test", "tester", {})
    assert ids[1] not in index.query(RunFilter(), 50)

    # A change made by someone else (another replica) is found by sync.
    other = RunStore(store.root)
    other.update(ids[2], complete)
    assert index.sync().refreshed == 1
    assert set(index.query(RunFilter(status="completed"), 50)) == {ids[0], ids[2]}

    report = index.rebuild()
    assert (report.scanned, report.refreshed) == (3, 3)
    assert len(index) == 3


@pytest.mark.parametrize("cursor", ["", "abc", "djE6bm90LWEtcnVu", "%%%", "x" * 100])
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        decode_cursor(cursor)


def test_a_recent_sync_reads_only_recent_day_folders(store: RunStore) -> None:
    old = make_runs(store, 2, datetime.now(UTC) - timedelta(days=10))
    new = make_runs(store, 2, datetime.now(UTC) - timedelta(minutes=5))
    index = RunIndex(store)
    assert index.sync(recent_days=2).scanned == 2
    assert set(index.query(RunFilter(), 50)) == set(new)
    other = RunStore(store.root)
    other.delete_run(new[0], "test", "tester", {})
    other.delete_run(old[0], "test", "tester", {})
    assert index.sync(recent_days=2).removed == 1  # the old run's row is left to a full sync
    assert index.sync().scanned == 2
    assert set(index.query(RunFilter(), 50)) == {old[1], new[1]}
