from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import threading
from pathlib import Path

import boto3
import pytest
from kiln_contracts.ids import new_run_id, run_date
from kiln_contracts.layout import InvalidFilenameError
from kiln_contracts.records import Entity, RunRecord, RunRequest, RunStatus
from kiln_storage.base import (
    EntityNotFoundError,
    RunExistsError,
    RunNotFoundError,
    StagingWriter,
)
from kiln_storage.local import RunStore
from kiln_storage.s3 import S3RunStore


def test_create_run_writes_folder_record_and_input(store: RunStore) -> None:
    run_id = new_run_id()
    store.create_run(run_id, RunRequest(workflow="noise", input_text="ein roter Drache ✨"))
    folder = store.root / "runs" / run_date(run_id).isoformat() / run_id
    assert sorted(p.name for p in folder.iterdir()) == ["01_input.txt", "metadata.json"]
    record = RunRecord.model_validate_json((folder / "metadata.json").read_bytes())
    assert record.run_id == run_id
    assert record.status == RunStatus.QUEUED
    text = (folder / "01_input.txt").read_bytes()
    assert text.decode() == "ein roter Drache ✨"
    assert record.entities[0].sha256 == hashlib.sha256(text).hexdigest()
    assert [e.event for e in record.events] == ["created"]
    # no staging leftovers beside the run folder
    assert [p.name for p in folder.parent.iterdir()] == [run_id]


def test_a_run_is_created_once(store: RunStore) -> None:
    run_id = new_run_id()
    store.create_run(run_id, RunRequest(workflow="noise", input_text="x"))
    with pytest.raises(RunExistsError):
        store.create_run(run_id, RunRequest(workflow="noise", input_text="y"))
    assert store.read(run_id).request.input_text == "x"


def test_storage_id_is_written_once(tmp_path: Path) -> None:
    first = RunStore(tmp_path).ensure_storage_id()
    assert RunStore(tmp_path).ensure_storage_id() == first
    assert (tmp_path / "storage-id").read_text().strip() == first


def test_missing_run_and_file(store: RunStore, run_id: str) -> None:
    with pytest.raises(RunNotFoundError):
        store.read(new_run_id())
    with pytest.raises(EntityNotFoundError):
        store.entity_path(run_id, "02_output_image.png")
    with pytest.raises(InvalidFilenameError):
        store.entity_path(run_id, "../metadata.json")


def test_threads_never_share_a_sequence_number(store: RunStore, run_id: str) -> None:
    def add(n: int) -> None:
        store.add_bytes(run_id, f"{n}".encode(), "note", "txt", "text/plain", {"n": n})

    threads = [threading.Thread(target=add, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    record = store.read(run_id)
    seqs = [e.seq for e in record.entities]
    assert sorted(seqs) == list(range(1, 42))
    assert sorted(e.meta["n"] for e in record.entities if e.type == "note") == list(range(40))
    for entity in record.entities:
        assert (store.run_dir(run_id) / entity.filename).is_file()


def _write_many(root: str, run_id: str, writer: int, count: int) -> None:
    store = RunStore(Path(root))
    for n in range(count):
        store.add_bytes(run_id, b"x" * n, "note", "txt", "text/plain", {"writer": writer, "n": n})


def test_two_processes_on_one_volume_lose_nothing(store: RunStore, run_id: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_write_many, args=(str(store.root), run_id, w, 15)) for w in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    record = store.read(run_id)
    notes = [e for e in record.entities if e.type == "note"]
    assert len(notes) == 30
    assert len({e.seq for e in record.entities}) == len(record.entities)
    assert {(e.meta["writer"], e.meta["n"]) for e in notes} == {
        (w, n) for w in range(2) for n in range(15)
    }
    on_disk = {p.name for p in store.run_dir(run_id).iterdir() if not p.name.startswith(".")}
    assert on_disk == {e.filename for e in record.entities} | {"metadata.json"}
    json.loads((store.run_dir(run_id) / "metadata.json").read_text())


def test_blocking_is_recorded_and_reversible(store: RunStore, run_id: str) -> None:
    entity = store.set_blocked(run_id, "01_input.txt", "shows a face")
    assert entity.blocked is not None
    assert entity.blocked.reason == "shows a face"
    record = store.read(run_id)
    assert record.entities[0].blocked == entity.blocked
    assert record.events[-1].event == "blocked"
    assert record.events[-1].detail == {"filename": "01_input.txt", "reason": "shows a face"}
    # Blocking again with the same reason writes nothing new.
    store.set_blocked(run_id, "01_input.txt", "shows a face")
    assert len(store.read(run_id).events) == len(record.events)
    assert store.set_blocked(run_id, "01_input.txt", None).blocked is None
    assert store.read(run_id).events[-1].event == "unblocked"
    with pytest.raises(EntityNotFoundError):
        store.set_blocked(run_id, "09_output_image.png", "x")
    with pytest.raises(InvalidFilenameError):
        store.set_blocked(run_id, "../metadata.json", "x")


def test_deleting_a_run_removes_the_folder_and_audits_once(store: RunStore, run_id: str) -> None:
    folder = store.run_dir(run_id)
    assert store.delete_run(run_id, "request", "media-1", {"note": "test"})
    assert not folder.exists()
    assert [p.name for p in folder.parent.iterdir()] == []  # nothing left behind
    with pytest.raises(RunNotFoundError):
        store.read(run_id)
    assert not store.delete_run(run_id, "request", "media-2", {})
    (line,) = store.read_audit()
    assert line["run_id"] == run_id
    assert line["reason"] == "request"
    assert line["actor"] == "media-1"
    assert line["files"] == ["01_input.txt"]
    assert line["note"] == "test"


def test_iterating_runs_and_streaming_an_entity(store: RunStore) -> None:
    ids = [new_run_id() for _ in range(3)]
    for run_id in ids:
        store.create_run(run_id, RunRequest(workflow="noise", input_text=run_id))
    assert list(store.iter_run_ids()) == sorted(ids, reverse=True)
    assert b"".join(store.iter_entity(ids[0], "01_input.txt")) == ids[0].encode()


def test_an_entity_named_as_existing_is_stored_once(store: RunStore, run_id: str) -> None:
    def once(record: RunRecord) -> Entity | None:
        return next((e for e in record.entities if e.meta.get("source") == "a.png"), None)

    first = store.add_bytes(run_id, b"a", "note", "txt", "text/plain", {"source": "a.png"}, once)
    again = store.add_bytes(run_id, b"a", "note", "txt", "text/plain", {"source": "a.png"}, once)
    assert again == first
    assert [e.seq for e in store.read(run_id).entities] == [1, 2]
    assert not [p for p in store.run_dir(run_id).iterdir() if p.name.startswith(".incoming")]


def test_a_leftover_of_an_interrupted_write_does_not_block_the_run(
    store: RunStore, run_id: str
) -> None:
    # A writer died after renaming 02_note.txt into place but before listing it.
    (store.run_dir(run_id) / "02_note.txt").write_bytes(b"half a story")
    entity = store.add_bytes(run_id, b"whole", "note", "txt", "text/plain", {})
    assert entity.filename == "02_note.txt"
    assert (store.run_dir(run_id) / "02_note.txt").read_bytes() == b"whole"
    assert store.read(run_id).entities[-1].sha256 == entity.sha256


def _age(path: Path, seconds: float) -> None:
    old = path.stat().st_mtime - seconds
    os.utime(path, (old, old))


def test_crash_debris_is_removed_after_the_grace_period_and_never_listed(
    store: RunStore, run_id: str
) -> None:
    folder = store.run_dir(run_id)
    staged = store.open_staging(run_id)
    staged.write(b"half an image")  # a writer that died before commit
    staged._handle.close()
    half_record = folder / ".metadata.json.k2j4.tmp"
    half_record.write_bytes(b'{"run_id": ')
    fresh = folder / ".incoming.live.tmp"  # a writer still at work: spared
    fresh.write_bytes(b"x")
    half_built = folder.parent / f".{new_run_id()}.abcd"
    half_built.mkdir()
    (half_built / "metadata.json").write_bytes(b"{}")
    half_deleted = folder.parent / f".deleted.{new_run_id()}.1234"
    half_deleted.mkdir()
    for path in (staged.path, half_record, half_built, half_deleted):
        _age(path, 7200)
    record_before = (folder / "metadata.json").read_bytes()

    removed = store.remove_crash_debris(grace_seconds=3600)

    assert sorted(Path(p).name for p in removed) == sorted(
        [staged.path.name, half_record.name, half_built.name, half_deleted.name]
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        ".incoming.live.tmp",
        "01_input.txt",
        "metadata.json",
    ]
    assert sorted(p.name for p in folder.parent.iterdir()) == [run_id]
    # the run itself is untouched and still the only one listed
    assert (folder / "metadata.json").read_bytes() == record_before
    assert list(store.iter_run_ids()) == [run_id]
    assert [e.filename for e in store.read(run_id).entities] == ["01_input.txt"]


def test_crash_debris_on_an_empty_root_is_nothing(tmp_path: Path) -> None:
    assert RunStore(tmp_path / "empty").remove_crash_debris(grace_seconds=0) == []


def test_s3_crash_debris_is_the_stale_staged_outputs_in_the_spool(tmp_path: Path) -> None:
    # Removing debris never calls S3: a client that could not connect anywhere is enough.
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
    )
    store = S3RunStore(client, "bucket", spool=tmp_path / "spool")
    stale = StagingWriter(store.spool)  # what open_staging makes, without asking S3 for the run
    stale.write(b"half")
    stale._handle.close()
    _age(stale.path, 7200)
    live = StagingWriter(store.spool)
    live.write(b"still arriving")
    removed = store.remove_crash_debris(grace_seconds=3600)
    assert removed == [str(stale.path)]
    assert sorted((tmp_path / "spool").iterdir()) == [live.path]
    live.abort()
