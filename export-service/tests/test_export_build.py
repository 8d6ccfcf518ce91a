"""Building a bag from run folders on a real directory, checked with standard tools."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import bagit
import pytest
from export_runs import make_run, output_entities
from kiln_contracts.exports import ExportFilter, ExportFormat, ExportInclude, ExportRequest
from kiln_contracts.ids import new_run_id
from kiln_contracts.layout import run_relpath
from kiln_contracts.records import RunStatus
from kiln_export.build import IntegrityError, build_export
from kiln_export.content import select_runs
from kiln_storage.local import RunStore

EXPORT_ID = new_run_id()


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path / "storage")
    store.ensure_storage_id()
    return store


def build(store: RunStore, tmp_path: Path, request: ExportRequest) -> tuple[Path, object]:
    selection = select_runs(store.root, request.filter)
    archive = tmp_path / f"export.{request.format.value}"
    with archive.open("wb") as sink:
        result = build_export(store.root, EXPORT_ID, request, selection, sink)
    return archive, (selection, result)


def extract(archive: Path, into: Path) -> Path:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            assert zf.testzip() is None
            zf.extractall(into)
    else:
        with tarfile.open(archive, "r:gz") as tf:
            tf.extractall(into, filter="data")
    [bag_dir] = list(into.iterdir())
    return bag_dir


@pytest.mark.parametrize("fmt", [ExportFormat.ZIP, ExportFormat.TAR_GZ])
def test_bag_is_valid_and_index_matches_every_run(
    store: RunStore, tmp_path: Path, fmt: ExportFormat
) -> None:
    runs = [
        make_run(store, outputs=2),
        make_run(store, workflow="audio", input_text='ünïcode, "quoted"\nline'),
    ]
    archive, _ = build(store, tmp_path, ExportRequest(format=fmt))
    if fmt is ExportFormat.ZIP:
        assert shutil.which("unzip"), "unzip is missing: run `make install`"
        tested = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True)
        assert tested.returncode == 0, tested.stdout + tested.stderr
    bag_dir = extract(archive, tmp_path / "out")
    assert bag_dir.name == f"kiln-export-{EXPORT_ID}"
    bag = bagit.Bag(str(bag_dir))
    bag.validate(completeness_only=False)  # raises with the reasons when invalid
    assert bag.info["External-Identifier"] == EXPORT_ID
    assert bag.info["Kiln-Runs"] == "2"
    assert (bag_dir / "bagit.txt").read_text().startswith("BagIt-Version: 1.0\n")
    assert sorted(bag.algorithms) == ["sha256", "sha512"]

    rows = json.loads((bag_dir / "data" / "index.json").read_text())
    with (bag_dir / "data" / "index.csv").open(newline="", encoding="utf-8") as handle:
        csv_rows = list(csv.DictReader(handle))
    assert [r["run_id"] for r in rows] == [r.run_id for r in runs]
    assert [r["run_id"] for r in csv_rows] == [r.run_id for r in runs]
    for record, row, csv_row in zip(runs, rows, csv_rows, strict=True):
        folder = bag_dir / "data" / run_relpath(record.run_id)
        stored = store.read(record.run_id)
        assert (folder / "metadata.json").read_bytes() == (
            store.run_dir(record.run_id) / "metadata.json"
        ).read_bytes()
        assert row["input_text"] == csv_row["input_text"] == stored.request.input_text
        assert row["workflow"] == stored.request.workflow
        assert row["params"] == json.loads(csv_row["params"]) == stored.request.params
        assert row["device_id"] == stored.request.device_id
        assert row["status"] == "completed"
        expected = {e.filename: e.sha256 for e in output_entities(stored)}
        assert {o["filename"]: o["sha256"] for o in row["outputs"]} == expected
        assert json.loads(csv_row["outputs"]) == row["outputs"]
        for entity in stored.entities:
            assert (folder / entity.filename).read_bytes() == (
                store.run_dir(record.run_id) / entity.filename
            ).read_bytes()

    crate = json.loads((bag_dir / "data" / "ro-crate-metadata.json").read_text())
    graph = {item["@id"]: item for item in crate["@graph"]}
    assert graph["ro-crate-metadata.json"]["about"] == {"@id": "./"}
    for record in runs:
        action = graph[f"#run/{record.run_id}"]
        assert action["@type"] == "CreateAction"
        folder = run_relpath(record.run_id).as_posix()
        assert {"@id": f"{folder}/01_input.txt"} in action["object"]
        assert graph[action["instrument"]["@id"]]["name"] == record.request.workflow
        results = {r["@id"] for r in action["result"]}
        assert results == {f"{folder}/{e.filename}" for e in output_entities(record)}
        for ref in results:
            assert graph[ref]["sha256"] == next(
                e.sha256 for e in record.entities if ref.endswith(e.filename)
            )
        assert {"@id": f"{folder}/"} in graph["./"]["hasPart"]
        assert {"@id": f"#run/{record.run_id}"} in graph["./"]["mentions"]


def test_blocked_media_left_out_unless_asked_and_in_progress_runs_listed(
    store: RunStore, tmp_path: Path
) -> None:
    blocked_run = make_run(store, outputs=2, block_first_output=True)
    running = make_run(store, status=RunStatus.RUNNING)
    [blocked, kept] = output_entities(blocked_run)

    archive, _ = build(store, tmp_path, ExportRequest())
    bag_dir = extract(archive, tmp_path / "without")
    bagit.Bag(str(bag_dir)).validate()
    folder = bag_dir / "data" / run_relpath(blocked_run.run_id)
    assert not (folder / blocked.filename).exists()
    assert (folder / kept.filename).exists()
    assert not (bag_dir / "data" / run_relpath(running.run_id)).exists()
    info = (bag_dir / "bag-info.txt").read_text()
    assert "Kiln-Blocked-Media: left out (1 files)" in info
    assert (
        f"Kiln-Blocked-File-Left-Out: data/{run_relpath(blocked_run.run_id)}/{blocked.filename}"
        in info
    )
    assert f"Kiln-Run-Skipped-In-Progress: {running.run_id}" in info
    [row] = json.loads((bag_dir / "data" / "index.json").read_text())
    assert row["blocked_left_out"] == [blocked.filename]

    (tmp_path / "with").mkdir()
    archive, _ = build(store, tmp_path / "with", ExportRequest(include=ExportInclude(blocked=True)))
    bag_dir = extract(archive, tmp_path / "with-out")
    bagit.Bag(str(bag_dir)).validate()
    assert (bag_dir / "data" / run_relpath(blocked_run.run_id) / blocked.filename).exists()
    assert "Kiln-Blocked-Media: included on request" in (bag_dir / "bag-info.txt").read_text()


def test_filter_by_session_and_named_missing_runs(store: RunStore, tmp_path: Path) -> None:
    mine = make_run(store, session_id="s-7")
    make_run(store, session_id="other")
    by_session = select_runs(store.root, ExportFilter(session_id="s-7"))
    assert by_session.run_ids == [mine.run_id]
    ghost = new_run_id()
    named = select_runs(store.root, ExportFilter(run_ids=[mine.run_id, ghost]))
    assert named.run_ids == [mine.run_id]
    assert named.missing == [ghost]


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove"])
def test_a_damaged_file_fails_the_export_naming_run_and_file(
    store: RunStore, tmp_path: Path, damage: str
) -> None:
    make_run(store)
    record = make_run(store)
    [output] = output_entities(record)
    path = store.run_dir(record.run_id) / output.filename
    data = path.read_bytes()
    if damage == "flip":
        path.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    elif damage == "truncate":
        path.write_bytes(data[:-1])
    else:
        path.unlink()
    with pytest.raises(IntegrityError) as caught:
        build(store, tmp_path, ExportRequest())
    assert caught.value.run_id == record.run_id
    assert caught.value.filename == output.filename
    assert record.run_id in str(caught.value)
    assert output.filename in str(caught.value)


def test_sha512_manifests_are_checked_by_bagit(store: RunStore, tmp_path: Path) -> None:
    """Both payload manifests and both tag manifests are there and agree; a wrong sha512 line
    alone makes bagit (library and `bagit.py --validate`) reject the bag."""
    record = make_run(store)
    archive, _ = build(store, tmp_path, ExportRequest())
    bag_dir = extract(archive, tmp_path / "out")
    for name in ("manifest", "tagmanifest"):
        listed = [
            (bag_dir / f"{name}-{algorithm}.txt").read_text().splitlines()
            for algorithm in ("sha256", "sha512")
        ]
        assert [line.split("  ", 1)[1] for line in listed[0]] == [
            line.split("  ", 1)[1] for line in listed[1]
        ]
        assert all(len(line.split("  ", 1)[0]) == 128 for line in listed[1])
    tags = (bag_dir / "tagmanifest-sha512.txt").read_text()
    assert "manifest-sha256.txt" in tags
    assert "manifest-sha512.txt" in tags
    cli = [sys.executable, "-m", "bagit", "--validate", str(bag_dir)]
    assert subprocess.run(cli, capture_output=True).returncode == 0

    manifest = bag_dir / "manifest-sha512.txt"
    output = f"data/{run_relpath(record.run_id).as_posix()}/{output_entities(record)[0].filename}"
    lines = manifest.read_text().splitlines()
    damaged = ["0" * 128 + f"  {output}" if line.endswith(output) else line for line in lines]
    assert damaged != lines
    manifest.write_text("\n".join(damaged) + "\n")
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(bag_dir)).validate(completeness_only=False)
    assert subprocess.run(cli, capture_output=True).returncode != 0
