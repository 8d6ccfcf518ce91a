"""Stored-output throughput (MB/s) beside raw temp + fsync + rename on the same disk.

    uv run python bench/store.py [--dir DIR] [--sizes 1,16] [--count 40]

Three ways of putting N files of S MiB on the volume, in the same folder:
  raw      write a temp file, fsync, rename, fsync the directory (the floor for a safe write)
  store    RunStore: stream into a staging file (sha256 as it goes), give it the next sequence
           number under the run's lock, rename, rewrite metadata.json atomically
  service  MediaService.on_generated: the whole output path (fetch stream, size and format
           checks, meta probe, store, record, complete), fed from memory instead of ComfyUI
Prints MB/s for each and the ratio to raw; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from kiln_contracts.events import GeneratedOutput, RunFailed, RunGenerated, RunStored
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunRequest
from kiln_media.service import MediaService
from kiln_storage.local import RunStore, write_atomic

CHUNK = 256 * 1024


def payload(size: int) -> bytes:
    # A PNG signature so the format check passes; the rest is incompressible.
    return b"\x89PNG\r\n\x1a\n" + os.urandom(size - 8)


def chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


class MemorySource:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def stream(self, backend_url: str, output: GeneratedOutput) -> AsyncIterator[bytes]:
        for chunk in chunks(self.data):
            yield chunk


class NoPublisher:
    async def stored(self, event: RunStored) -> None:
        return None

    async def failed(self, event: RunFailed) -> None:
        raise RuntimeError(event.message)


def bench_raw(folder: Path, data: bytes, count: int) -> float:
    folder.mkdir(parents=True)
    began = time.perf_counter()
    for n in range(count):
        write_atomic(folder / f"{n:04d}.png", data)
    return time.perf_counter() - began


def bench_store(root: Path, data: bytes, count: int) -> float:
    store = RunStore(root)
    run_id = new_run_id()
    store.create_run(run_id, RunRequest(workflow="noise", input_text="bench"))
    began = time.perf_counter()
    for _ in range(count):
        staged = store.stage_stream(run_id, chunks(data))
        store.commit_entity(run_id, staged, "output_image", "png", "image/png", {})
    return time.perf_counter() - began


def bench_service(root: Path, data: bytes, count: int) -> float:
    store = RunStore(root)
    service = MediaService(store, MemorySource(data), NoPublisher())
    run_id = new_run_id()
    store.create_run(run_id, RunRequest(workflow="noise", input_text="bench"))
    outputs = [
        GeneratedOutput(node_id="9", kind="images", filename=f"9_{n:05d}_.png")
        for n in range(count)
    ]
    event = RunGenerated(run_id=run_id, backend="mem", backend_url="mem://", outputs=outputs)
    began = time.perf_counter()
    asyncio.run(service.on_generated(event))
    elapsed = time.perf_counter() - began
    assert store.read(run_id).status.value == "completed"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, help="a folder on the disk to measure (default: tmp)")
    parser.add_argument("--sizes", default="1,16", help="file sizes in MiB, comma separated")
    parser.add_argument("--count", type=int, default=40, help="files per size")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="kiln-bench-store-", dir=args.dir))
    try:
        print(f"disk: {base}")
        print(
            f"{'size':>6} {'files':>6} {'raw MB/s':>9} {'store MB/s':>11} {'service MB/s':>13}"
            f" {'store/raw':>10} {'service/raw':>12}"
        )
        for size_mib in (int(s) for s in args.sizes.split(",")):
            data = payload(size_mib * 1024 * 1024)
            count = max(4, args.count // size_mib) if size_mib > 4 else args.count
            megabytes = len(data) * count / 1e6
            raw = megabytes / bench_raw(base / f"raw-{size_mib}", data, count)
            store = megabytes / bench_store(base / f"store-{size_mib}", data, count)
            service = megabytes / bench_service(base / f"service-{size_mib}", data, count)
            print(
                f"{size_mib:>4}Mi {count:>6} {raw:9.0f} {store:11.0f} {service:13.0f}"
                f" {store / raw:10.2f} {service / raw:12.2f}"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
