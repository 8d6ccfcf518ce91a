"""Listing latencies with 100 000 runs on the storage root, through a real media-service process.

    uv run python bench/list.py [--runs 100000] [--requests 200] [--keep DIR]

Writes a storage root of N run folders in the real layout (the bench data is written without
fsync to save minutes; the code under test is the index and the listing, not the writer), then
measures: a full index rebuild from the folders, an unchanged re-sync (what the periodic job costs),
media-service's start-up, and GET /runs latencies (p50/p99) for the newest page and filtered pages.
Prints figures; asserts nothing about them.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uuid_utils
from kiln_contracts.layout import METADATA_FILE, STORAGE_ID_FILE, run_relpath
from kiln_devstack.processes import ManagedProcess, free_port, http_ok, wait_until
from kiln_storage.index import RunIndex
from kiln_storage.local import RunStore

STATUSES = ["completed"] * 90 + ["failed"] * 8 + ["cancelled"] * 2
WORKFLOWS = ["noise", "sd15_text_to_image", "audio_tone"]


def record(run_id: str, created: datetime, rng: random.Random) -> dict[str, Any]:
    at = created.isoformat()
    sha = "ab" * 32
    status = rng.choice(STATUSES)
    return {
        "schema_version": 1,
        "run_id": run_id,
        "status": status,
        "created_at": at,
        "updated_at": at,
        "request": {
            "workflow": rng.choice(WORKFLOWS),
            "input_text": "a red kite over the sea",
            "params": {"width": 512, "height": 512},
            "device_id": f"device-{rng.randrange(200)}",
            "session_id": f"session-{rng.randrange(2000)}",
        },
        "backend": "comfyui-0",
        "entities": [
            {
                "seq": 1,
                "type": "input",
                "filename": "01_input.txt",
                "mime": "text/plain",
                "size": 23,
                "sha256": sha,
                "created_at": at,
                "meta": {},
                "blocked": None,
            },
            {
                "seq": 2,
                "type": "workflow",
                "filename": "02_workflow.json",
                "mime": "application/json",
                "size": 900,
                "sha256": sha,
                "created_at": at,
                "meta": {"backend": "comfyui-0", "seed": 7},
                "blocked": None,
            },
            {
                "seq": 3,
                "type": "output_image",
                "filename": "03_output_image.png",
                "mime": "image/png",
                "size": 400000,
                "sha256": sha,
                "created_at": at,
                "meta": {"width": 512, "height": 512, "node": "9"},
                "blocked": None,
            },
        ],
        "events": [
            {"at": at, "event": e, "status": s, "detail": {}}
            for e, s in [
                ("created", "queued"),
                ("started", "running"),
                ("generated", "storing"),
                ("stored", status),
            ]
        ],
        "error": None,
    }


def build_root(root: Path, count: int) -> None:
    rng = random.Random(4)
    start = datetime.now(UTC) - timedelta(days=60)
    step_ns = int(timedelta(days=60).total_seconds() * 1e9) // count
    root.mkdir(parents=True, exist_ok=True)
    RunStore(root).ensure_storage_id()
    began = time.perf_counter()
    for n in range(count):
        nanos = int(start.timestamp() * 1e9) + n * step_ns
        run_id = str(uuid_utils.uuid7(nanoseconds=nanos))
        folder = root / run_relpath(run_id)
        folder.mkdir(parents=True)
        created = datetime.fromtimestamp(nanos / 1e9, tz=UTC)
        (folder / METADATA_FILE).write_text(json.dumps(record(run_id, created, rng), indent=2))
        if n and n % 20000 == 0:
            print(f"  wrote {n} runs ({time.perf_counter() - began:.0f} s)", flush=True)
    print(f"  wrote {count} run folders in {time.perf_counter() - began:.1f} s")


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99, ordered[-1]


def measure(client: httpx.Client, params: dict[str, Any], requests: int) -> tuple[float, ...]:
    samples = []
    items = 0
    for _ in range(requests):
        began = time.perf_counter()
        response = client.get("/runs", params=params)
        samples.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
        items = len(response.json()["items"])
    return (*percentiles(samples), items)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="reuse/keep the bench root in this folder")
    args = parser.parse_args()

    var = args.keep or Path(tempfile.mkdtemp(prefix="kiln-bench-list-"))
    root = var / "storage"
    if not (root / STORAGE_ID_FILE).exists():
        print(f"building a storage root with {args.runs} runs in {root}")
        build_root(root, args.runs)

    store = RunStore(root)
    index_path = var / "media-index.sqlite3"
    index_path.unlink(missing_ok=True)
    index = RunIndex(store, index_path)
    report = index.rebuild()
    print(f"index rebuild from the folders: {report.scanned} runs in {report.seconds:.2f} s")
    report = index.sync()
    print(f"unchanged full re-sync (every 15 min): {report.seconds * 1000:.0f} ms")
    report = index.sync(recent_days=2)
    print(f"unchanged recent re-sync, last 2 days (every 5 s): {report.seconds * 1000:.0f} ms")
    index.close()

    nats_port, media_port = free_port(), free_port()
    logs = var / "logs"
    nats = ManagedProcess(
        "nats",
        [
            str(Path(sys.executable).parent / "nats-server"),
            "-a",
            "127.0.0.1",
            "-p",
            str(nats_port),
            "-js",
            "-sd",
            str(var / "nats"),
        ],
        logs / "nats.log",
    )
    env = {
        "KILN_STORAGE_ROOT": str(root),
        "KILN_NATS_URL": f"nats://127.0.0.1:{nats_port}",
        "KILN_MEDIA_INDEX_PATH": str(index_path),
        "KILN_INSTANCE_ID": "media-bench",
        "KILN_LOG_LEVEL": "WARNING",
    }
    media = ManagedProcess(
        "media",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "kiln_media.app:create_app",
            "--factory",
            "--port",
            str(media_port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        logs / "media.log",
        env=env,
    )
    try:
        nats.start()
        time.sleep(0.5)
        began = time.perf_counter()
        media.start()
        url = f"http://127.0.0.1:{media_port}"
        wait_until(http_ok(f"{url}/readyz"), 600, "media-service", media)
        print(f"media-service ready (index file present) in {time.perf_counter() - began:.1f} s")
        cases = [
            ("newest page (limit 50)", {}),
            ("newest page (limit 500)", {"limit": 500}),
            ("one device (~500 runs)", {"device_id": "device-17"}),
            ("one session (~50 runs)", {"session_id": "session-1234"}),
            ("status=cancelled (~2 %)", {"status": "cancelled"}),
            ("workflow + device", {"workflow": "noise", "device_id": "device-3"}),
            (
                "since/until: one day",
                {
                    "since": (datetime.now(UTC) - timedelta(days=30)).isoformat(),
                    "until": (datetime.now(UTC) - timedelta(days=29)).isoformat(),
                },
            ),
        ]
        with httpx.Client(base_url=url, timeout=30) as client:
            page = client.get("/runs", params={"limit": 500}).json()
            for _ in range(20):
                page = client.get(
                    "/runs", params={"limit": 500, "cursor": page["next_cursor"]}
                ).json()
            cases.append(("page 22 via cursor (limit 50)", {"cursor": page["next_cursor"]}))
            print(f"\nGET /runs with {args.runs} runs, {args.requests} sequential requests each")
            print(f"{'query':34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'items':>6}")
            for name, params in cases:
                p50, p99, worst, items = measure(client, params, args.requests)
                print(f"{name:34} {p50:8.1f} {p99:8.1f} {worst:8.1f} {items:6.0f}")
    finally:
        media.stop()
        nats.stop()
        if args.keep is None:
            shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
