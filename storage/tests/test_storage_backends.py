"""One suite, two backends: a local directory and S3 (a real ``weed mini``). Every store the
factory makes is independent, as another replica's would be."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

import pytest
from kiln_contracts.ids import new_run_id
from kiln_contracts.layout import InvalidFilenameError
from kiln_contracts.records import Entity, RunHistoryEntry, RunRecord, RunRequest, RunStatus
from kiln_storage.base import EntityNotFoundError, RunExistsError, RunNotFoundError, RunStorage
from kiln_storage.index import RunFilter, RunIndex

Store = RunStorage
StoreFactory = Callable[[], Store]


def new_run(store: Store, **request: str) -> str:
    run_id = new_run_id()
    store.create_run(run_id, RunRequest(workflow="noise", input_text="a red kite", **request))
    return run_id


def test_runs_are_created_once_and_read_back(any_store: StoreFactory) -> None:
    store = any_store()
    first_id = store.ensure_storage_id()
    assert any_store().ensure_storage_id() == first_id
    run_id = new_run(store)
    record = any_store().read(run_id)
    assert record.status == RunStatus.QUEUED
    assert [e.filename for e in record.entities] == ["01_input.txt"]
    assert b"".join(store.iter_entity(run_id, "01_input.txt")) == b"a red kite"
    assert record.entities[0].sha256 == hashlib.sha256(b"a red kite").hexdigest()
    with pytest.raises(RunExistsError):
        any_store().create_run(run_id, RunRequest(workflow="noise", input_text="other"))
    assert b"".join(store.iter_entity(run_id, "01_input.txt")) == b"a red kite"


def test_missing_and_invalid_names(any_store: StoreFactory) -> None:
    store = any_store()
    with pytest.raises(RunNotFoundError):
        store.read(new_run_id())
    run_id = new_run(store)
    with pytest.raises(EntityNotFoundError):
        store.entity(run_id, "05_output_image.png")
    for bad in ("../metadata.json", "metadata.json", "01_input.txt\x00", "/etc/passwd"):
        with pytest.raises(InvalidFilenameError):
            store.entity(run_id, bad)


def test_concurrent_updates_from_two_stores_lose_nothing(any_store: StoreFactory) -> None:
    stores = [any_store(), any_store()]
    run_id = new_run(stores[0])

    def note(n: int) -> None:
        def change(record: RunRecord) -> RunRecord:
            entry = RunHistoryEntry(at=record.updated_at, event=f"note-{n}", status=record.status)
            return record.model_copy(update={"events": [*record.events, entry]})

        stores[n % 2].update(run_id, change)

    threads = [threading.Thread(target=note, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = {e.event for e in stores[0].read(run_id).events}
    assert {f"note-{n}" for n in range(16)} <= events


def test_concurrent_entities_from_two_stores_never_share_a_number(
    any_store: StoreFactory,
) -> None:
    stores = [any_store(), any_store()]
    run_id = new_run(stores[0])
    errors: list[BaseException] = []

    def add(n: int) -> None:
        try:
            data = f"entity {n}".encode()
            stores[n % 2].add_bytes(run_id, data, "note", "txt", "text/plain", {"n": n})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    record = stores[1].read(run_id)
    assert [e.seq for e in record.entities] == list(range(1, 18))
    notes = [e for e in record.entities if e.type == "note"]
    assert len(notes) == 16
    assert {e.meta["n"] for e in notes} == set(range(16))
    for entity in notes:
        data = b"".join(stores[0].iter_entity(run_id, entity.filename))
        assert data == f"entity {entity.meta['n']}".encode()
        assert hashlib.sha256(data).hexdigest() == entity.sha256


def test_an_entity_racing_for_one_source_is_stored_once(any_store: StoreFactory) -> None:
    stores = [any_store(), any_store()]
    run_id = new_run(stores[0])

    def once(record: RunRecord) -> Entity | None:
        return next((e for e in record.entities if e.meta.get("source") == "x.png"), None)

    results: list[Entity] = []

    def add(n: int) -> None:
        meta = {"source": "x.png"}
        results.append(
            stores[n % 2].add_bytes(run_id, b"x", "out", "txt", "text/plain", meta, once)
        )

    threads = [threading.Thread(target=add, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    record = stores[0].read(run_id)
    assert [e.type for e in record.entities] == ["input", "out"]
    assert {r.filename for r in results} == {"02_out.txt"}


def test_blocking_deleting_listing_and_the_audit_log(any_store: StoreFactory) -> None:
    store = any_store()
    kept, gone = new_run(store, device_id="a"), new_run(store, device_id="b")
    assert list(store.iter_run_ids()) == [gone, kept]

    blocked = store.set_blocked(kept, "01_input.txt", "shows a name")
    assert blocked.blocked is not None
    assert any_store().read(kept).entities[0].blocked == blocked.blocked
    assert store.set_blocked(kept, "01_input.txt", None).blocked is None

    assert store.delete_run(gone, "device request", "tester", {})
    assert not any_store().delete_run(gone, "device request", "other", {})
    with pytest.raises(RunNotFoundError):
        store.read(gone)
    assert list(store.iter_run_ids()) == [kept]
    (entry,) = store.read_audit()
    assert entry["run_id"] == gone
    assert entry["device_id"] == "b"
    assert entry["actor"] == "tester"
    assert entry["files"] == ["01_input.txt"]


def test_the_listing_index_is_rebuilt_from_either_backend(any_store: StoreFactory) -> None:
    store = any_store()
    ids = [new_run(store, device_id=f"d{n % 2}") for n in range(5)]
    index = RunIndex(store)
    assert index.sync().scanned == 5
    assert index.query(RunFilter(device_id="d0"), 10) == [ids[4], ids[2], ids[0]]
    other = any_store()  # another replica changes and deletes runs
    other.set_blocked(ids[1], "01_input.txt", "x")
    other.delete_run(ids[0], "test", "tester", {})
    report = index.sync()
    assert (report.refreshed, report.removed) == (1, 1)
    assert index.sync(recent_days=1).refreshed == 0
    assert index.query(RunFilter(), 10) == list(reversed(ids[1:]))
