"""Export throughput and peak memory, beside `zip -0 -r` of the same run folders.

    uv run python bench/export.py [--total-mb 2048] [--file-mb 8] [--dir var/bench-export]

Makes synthetic completed runs (valid metadata.json, written by kiln_storage.local.RunStore
like media-service writes them) once, then times, each in a fresh process measured with
wait4 (peak RSS of that process alone):
  - kiln: the export builder (BagIt bag, sha256 of every file verified, index, RO-Crate) into a
    zip on the same disk — the background-job path without NATS and HTTP around it;
  - zip -0 -r: Info-ZIP storing the same run folders, no checksums beyond its CRC-32.
Both read from a warm page cache (the data is read once first), best of --repeat runs.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunRecord, RunRequest, RunStatus
from kiln_storage.local import RunStore

BUILD_ONE = """
import sys
from pathlib import Path
from kiln_contracts.exports import ExportRequest
from kiln_contracts.ids import new_run_id
from kiln_export.build import build_export
from kiln_export.content import select_runs
root, out = Path(sys.argv[1]), Path(sys.argv[2])
request = ExportRequest()
selection = select_runs(root, request.filter)
with out.open("wb", buffering=1 << 20) as sink:
    build_export(root, new_run_id(), request, selection, sink)
"""


def make_runs(root: Path, total_mb: int, file_mb: int) -> int:
    store = RunStore(root)
    store.ensure_storage_id()
    block = os.urandom(1 << 20)
    runs = max(1, total_mb // file_mb)
    for i in range(runs):
        run_id = new_run_id()
        store.create_run(run_id, RunRequest(workflow="noise", input_text=f"bench {i}"))
        # Distinct bytes per run (a counter in each MiB) so nothing dedupes or caches oddly.
        data = b"".join(i.to_bytes(8, "big") + block[8:] for _ in range(file_mb))
        store.add_bytes(run_id, data, "output_image", "png", "image/png", {})

        def complete(record: RunRecord) -> RunRecord:
            return record.model_copy(update={"status": RunStatus.COMPLETED})

        store.update(run_id, complete)
    return runs


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _high_water(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


@dataclass(frozen=True)
class Figures:
    wall: float  # seconds
    cpu: float  # user + system seconds of the child alone
    peak_rss: int  # bytes


def measure(argv: list[str], cwd: Path) -> Figures:
    """Wall and CPU seconds and peak RSS of one child process.

    The peak is the kernel's high-water mark of the child's own address space (VmHWM),
    sampled until it exits; rusage's ru_maxrss would include the forking parent's pages.
    CPU time is reported too: on a shared machine it is steadier than wall time.
    """
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL)
    peak = 0
    while True:
        if (mark := _high_water(process.pid)) is not None:
            peak = max(peak, mark)
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with {process.returncode}")
    return Figures(elapsed, usage.ru_utime + usage.ru_stime, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-mb", type=int, default=2048)
    parser.add_argument("--file-mb", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path("var/bench-export"))
    args = parser.parse_args()
    if shutil.which("zip") is None:
        raise SystemExit("zip is not installed (apt-get install zip)")

    base = args.dir.resolve()
    root = base / "storage"
    marker = base / f"made-{args.total_mb}-{args.file_mb}"
    if not marker.exists():
        shutil.rmtree(base, ignore_errors=True)
        print(f"making {args.total_mb} MiB of runs in {root} …", flush=True)
        runs = make_runs(root, args.total_mb, args.file_mb)
        marker.write_text(str(runs))
    runs = int(marker.read_text())
    source = tree_bytes(root / "runs")
    for path in (root / "runs").rglob("*"):  # warm the page cache for both contenders
        if path.is_file():
            with path.open("rb") as handle:
                while handle.read(1 << 24):
                    pass

    kiln_out, zip_out = base / "kiln.zip", base / "zip0.zip"
    kiln: list[Figures] = []
    info_zip: list[Figures] = []
    for _ in range(args.repeat):
        zip_out.unlink(missing_ok=True)
        info_zip.append(measure(["zip", "-0", "-r", "-q", str(zip_out), "runs"], root))
        kiln_out.unlink(missing_ok=True)
        kiln.append(measure([sys.executable, "-c", BUILD_ONE, str(root), str(kiln_out)], root))

    mib = source / (1 << 20)
    files = sum(1 for p in (root / "runs").rglob("*") if p.is_file())
    print(f"runs: {runs}, source: {mib:.0f} MiB in {files} files, best of {args.repeat}")
    best = {}
    for name, results, out in (("kiln export", kiln, kiln_out), ("zip -0 -r", info_zip, zip_out)):
        wall = min(r.wall for r in results)
        cpu = min(r.cpu for r in results)
        peak = max(r.peak_rss for r in results)
        best[name] = (wall, cpu, peak)
        print(
            f"{name:12}: {mib / wall:7.1f} MiB/s wall ({wall:.2f} s), {mib / cpu:7.1f} MiB per "
            f"CPU-second, peak RSS {peak / (1 << 20):6.1f} MiB, archive "
            f"{out.stat().st_size / (1 << 20):.0f} MiB"
        )
    (k_wall, k_cpu, k_peak), (z_wall, z_cpu, z_peak) = best["kiln export"], best["zip -0 -r"]
    print(
        f"ratio kiln/zip: wall throughput {z_wall / k_wall:.2f}x, CPU efficiency "
        f"{z_cpu / k_cpu:.2f}x, peak memory {k_peak / z_peak:.1f}x "
        f"({(k_peak - z_peak) / (1 << 20):.0f} MiB more, the Python interpreter and libraries)"
    )


if __name__ == "__main__":
    main()
