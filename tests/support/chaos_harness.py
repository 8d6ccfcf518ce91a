"""Load and bookkeeping for the chaos suite: submit N runs concurrently while something dies,
then account for every one of them from the API and from the storage root itself."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kiln_gateway.auth import DEV_RESEARCHER_TOKEN

FINAL = {"completed", "failed", "cancelled"}
RESEARCHER = {"Authorization": f"Bearer {DEV_RESEARCHER_TOKEN}"}
RETRYABLE = {429, 502, 503, 504}


@dataclass
class ChaosReport:
    scenario: str
    intended: int
    accepted: int = 0
    completed: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    duplicates: int = 0
    torn: list[str] = field(default_factory=list)
    checksum_mismatches: list[str] = field(default_factory=list)
    unexplained_failures: list[str] = field(default_factory=list)
    refused_attempts: int = 0
    longest_recovery_seconds: float = 0.0
    wall_seconds: float = 0.0

    def summary(self) -> str:
        failed = ", ".join(f"{code}={n}" for code, n in sorted(self.failed.items())) or "none"
        return (
            f"chaos[{self.scenario}]: runs={self.intended} accepted={self.accepted} "
            f"completed={self.completed} failed={sum(self.failed.values())} ({failed}) "
            f"lost={len(self.lost)} waiting={len(self.waiting)} duplicated={self.duplicates} "
            f"torn={len(self.torn)} sha256_mismatch={len(self.checksum_mismatches)} "
            f"refused_attempts={self.refused_attempts} "
            f"longest_recovery={self.longest_recovery_seconds:.1f}s wall={self.wall_seconds:.1f}s"
        )

    def assert_promises_kept(self) -> None:
        assert self.accepted == self.intended, self.summary()
        assert not self.lost, f"lost runs {self.lost[:5]}: {self.summary()}"
        assert not self.waiting, f"runs left waiting {self.waiting[:5]}: {self.summary()}"
        assert self.duplicates == 0, self.summary()
        assert not self.torn, f"torn metadata.json {self.torn[:5]}"
        assert not self.checksum_mismatches, f"sha256 mismatch {self.checksum_mismatches[:5]}"
        assert not self.unexplained_failures, (
            f"failed without a reason {self.unexplained_failures[:5]}"
        )
        assert self.completed + sum(self.failed.values()) == self.intended, self.summary()


class ChaosLoad:
    """Submits runs spread over the gateways; a client that retries with its Idempotency-Key
    through 429/5xx, as a well-behaved browser would, so a refused attempt is not a lost run."""

    def __init__(self, gateways: list[str], runs: int, concurrency: int = 32) -> None:
        self.gateways = gateways
        self.runs = runs
        self.concurrency = concurrency
        self.refused_attempts = 0
        self.accepted: dict[str, str] = {}
        self._progress = asyncio.Condition()

    async def wait_accepted(self, count: int) -> None:
        async with self._progress:
            await self._progress.wait_for(lambda: len(self.accepted) >= count)

    async def submit_all(self, deadline_seconds: float = 180) -> dict[str, str]:
        slots = asyncio.Semaphore(self.concurrency)
        accepted = self.accepted
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        async with httpx.AsyncClient(timeout=15, limits=limits) as client:

            async def one(index: int) -> None:
                key = str(uuid.uuid4())
                body = {
                    "workflow": "noise",
                    "input_text": f"chaos {index}",
                    "params": {"width": 32, "height": 32},
                }
                deadline = time.monotonic() + deadline_seconds
                delay = 0.2
                async with slots:
                    while time.monotonic() < deadline:
                        gateway = self.gateways[(index + int(delay * 10)) % len(self.gateways)]
                        try:
                            response = await client.post(
                                f"{gateway}/api/runs", json=body, headers={"Idempotency-Key": key}
                            )
                        except httpx.HTTPError:
                            self.refused_attempts += 1
                        else:
                            if response.status_code == 202:
                                accepted[key] = response.json()["run_id"]
                                async with self._progress:
                                    self._progress.notify_all()
                                return
                            assert response.status_code in RETRYABLE, response.text
                            self.refused_attempts += 1
                        await asyncio.sleep(delay)
                        delay = min(delay * 1.5, 2.0)

            await asyncio.gather(*(one(i) for i in range(self.runs)))
        return accepted

    async def wait_final(
        self, run_ids: list[str], deadline_seconds: float
    ) -> dict[str, dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + deadline_seconds
        async with httpx.AsyncClient(timeout=10, headers=RESEARCHER) as client:
            while time.monotonic() < deadline and len(records) < len(run_ids):
                pending = [r for r in run_ids if r not in records]
                for index, run_id in enumerate(pending[:64]):
                    gateway = self.gateways[index % len(self.gateways)]
                    try:
                        response = await client.get(f"{gateway}/api/runs/{run_id}")
                    except httpx.HTTPError:
                        continue
                    if response.status_code == 200 and response.json()["status"] in FINAL:
                        records[run_id] = response.json()
                if len(records) < len(run_ids):
                    await asyncio.sleep(0.2)
        return records


def account(
    report: ChaosReport,
    accepted: dict[str, str],
    records: dict[str, dict[str, Any]],
    storage_root: Path,
    before: set[str],
    probes: set[str],
) -> ChaosReport:
    """Check every accepted run against the storage root: none lost, none doubled, none torn."""
    report.accepted = len(accepted)
    run_ids = set(accepted.values())
    on_disk: dict[str, Path] = {}
    for metadata in storage_root.glob("runs/*/*/metadata.json"):
        run_id = metadata.parent.name
        if run_id in before or run_id in probes:
            continue
        on_disk[run_id] = metadata
        try:
            record = json.loads(metadata.read_text())
        except ValueError:
            report.torn.append(run_id)
            continue
        if record.get("status") == "completed":
            for entity in record["entities"]:
                data = (metadata.parent / entity["filename"]).read_bytes()
                if hashlib.sha256(data).hexdigest() != entity["sha256"]:
                    report.checksum_mismatches.append(f"{run_id}/{entity['filename']}")
    report.duplicates = len(set(on_disk) - run_ids)
    report.lost = sorted(run_ids - set(on_disk))
    report.waiting = sorted(r for r in run_ids if r in on_disk and r not in records)
    for run_id, record in records.items():
        if record["status"] == "completed":
            report.completed += 1
        else:
            error = record.get("error") or {}
            report.failed[str(error.get("code"))] += 1
            if not error.get("code") or not error.get("message"):
                report.unexplained_failures.append(run_id)
    return report


async def probe_recovery(
    gateway: str, fault_at: float, probes: set[str], deadline_seconds: float = 120
) -> float:
    """Seconds from the fault until a run submitted after it completes: how long the system
    takes to do its job again. The probe's run id is added to ``probes``."""
    deadline = time.monotonic() + deadline_seconds
    body = {
        "workflow": "noise",
        "input_text": "recovery probe",
        "params": {"width": 16, "height": 16},
    }
    key = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=10, headers=RESEARCHER) as client:
        run_id = None
        while time.monotonic() < deadline:
            try:
                if run_id is None:
                    response = await client.post(
                        f"{gateway}/api/runs", json=body, headers={"Idempotency-Key": key}
                    )
                    if response.status_code == 202:
                        run_id = response.json()["run_id"]
                        probes.add(run_id)
                else:
                    response = await client.get(f"{gateway}/api/runs/{run_id}")
                    if response.status_code == 200 and response.json()["status"] == "completed":
                        return time.monotonic() - fault_at
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    return float("inf")
