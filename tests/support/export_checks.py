"""Checks shared by the export integration tests: a downloaded archive is a valid BagIt bag
(bagit library, unzip -t), its RO-Crate parses, and every index row matches its run."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import bagit
import httpx
from kiln_contracts.layout import run_relpath


def open_bag(archive: Path, into: Path) -> Path:
    """Test the archive with standard tools, extract it, validate the bag; return its folder."""
    if archive.name.endswith(".zip"):
        assert shutil.which("unzip"), "unzip is missing: run `make install`"
        tested = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True)
        assert tested.returncode == 0, tested.stdout[-2000:] + tested.stderr
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)
    else:
        with tarfile.open(archive, "r:gz") as tf:
            tf.extractall(into, filter="data")
    [bag_dir] = list(into.iterdir())
    bag = bagit.Bag(str(bag_dir))
    bag.validate(completeness_only=False)
    assert sorted(bag.algorithms) == ["sha256", "sha512"]
    return bag_dir


def check_rows_against_runs(bag_dir: Path, gateway: httpx.Client, run_ids: list[str]) -> None:
    rows = json.loads((bag_dir / "data" / "index.json").read_text(encoding="utf-8"))
    assert sorted(r["run_id"] for r in rows) == sorted(run_ids)
    crate = json.loads((bag_dir / "data" / "ro-crate-metadata.json").read_text(encoding="utf-8"))
    graph = {item["@id"]: item for item in crate["@graph"]}
    for row in rows:
        record: dict[str, Any] = gateway.get(f"/api/runs/{row['run_id']}").json()
        request = record["request"]
        assert row["status"] == record["status"]
        assert row["workflow"] == request["workflow"]
        assert row["input_text"] == request["input_text"]
        assert row["params"] == request["params"]
        assert row["device_id"] == request["device_id"]
        assert row["session_id"] == request["session_id"]
        folder = bag_dir / "data" / run_relpath(row["run_id"])
        assert json.loads((folder / "metadata.json").read_text())["run_id"] == row["run_id"]
        outputs = {
            e["filename"]: e["sha256"] for e in record["entities"] if e["type"].startswith("output")
        }
        assert outputs, f"run {row['run_id']} has no outputs to check"
        assert {o["filename"]: o["sha256"] for o in row["outputs"]} == outputs
        for entity in record["entities"]:
            stored = gateway.get(f"/api/runs/{row['run_id']}/files/{entity['filename']}")
            assert (folder / entity["filename"]).read_bytes() == stored.content
        action = graph[f"#run/{row['run_id']}"]
        assert action["@type"] == "CreateAction"
        assert graph[action["instrument"]["@id"]]["name"] == request["workflow"]
        assert {r["@id"].rsplit("/", 1)[-1] for r in action["result"]} == set(outputs)
