"""The job runner on a real directory, with NATS replaced by a list of published messages."""

from __future__ import annotations

import asyncio
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from export_runs import make_run, output_entities, volume_jobs
from kiln_contracts.exports import (
    ExportCompleted,
    ExportFailed,
    ExportMessage,
    ExportProgress,
    ExportRequest,
    ExportState,
    ExportTarget,
    new_export_id,
)
from kiln_export.config import ExportSettings
from kiln_export.jobs import ExportJobs, JobNotFoundError
from kiln_storage.local import RunStore


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path / "storage")
    store.ensure_storage_id()
    return store


class Published(list[ExportMessage]):
    async def __call__(self, message: ExportMessage) -> None:
        self.append(message)


def runner(tmp_path: Path, store: RunStore, **overrides: object) -> tuple[ExportJobs, Published]:
    settings = ExportSettings(
        storage_root=store.root, export_root=tmp_path / "exports", **overrides
    )
    published = Published()
    jobs = volume_jobs(settings, published)
    return jobs, published


def submit(jobs: ExportJobs, request: ExportRequest) -> str:
    export_id = new_export_id()
    jobs.store.save(jobs.new_status(export_id, request))
    return export_id


def test_a_job_completes_with_progress_and_a_redelivery_changes_nothing(
    tmp_path: Path, store: RunStore
) -> None:
    runs = [make_run(store) for _ in range(3)]
    jobs, published = runner(tmp_path, store)
    export_id = submit(jobs, ExportRequest())

    status = asyncio.run(jobs.run(export_id))
    assert status.state is ExportState.COMPLETED
    assert (status.runs_done, status.runs_total, status.attempt) == (3, 3, 1)
    archive = jobs.volume.path(status.filename or "")
    assert archive.stat().st_size == status.bytes
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    for record in runs:
        [output] = output_entities(record)
        assert any(n.endswith(f"{record.run_id}/{output.filename}") for n in names)
    assert isinstance(published[0], ExportProgress)
    assert isinstance(published[-1], ExportCompleted)
    assert published[-1].sha256 == status.sha256

    again = asyncio.run(jobs.run(export_id))
    assert again == jobs.store.get(export_id)
    assert again.attempt == 1
    assert len([m for m in published if isinstance(m, ExportCompleted)]) == 1


def test_a_job_out_of_attempts_fails_visibly(tmp_path: Path, store: RunStore) -> None:
    make_run(store)
    jobs, published = runner(tmp_path, store, export_max_attempts=2)
    export_id = submit(jobs, ExportRequest())
    # As if two processes died while building it.
    jobs.store.save(
        jobs.store.get(export_id).model_copy(update={"attempt": 2, "state": ExportState.RUNNING})
    )

    status = asyncio.run(jobs.run(export_id))
    assert status.state is ExportState.FAILED
    assert status.error is not None
    assert status.error.code == "export_failed"
    assert "2 attempts" in status.error.message
    assert isinstance(published[-1], ExportFailed)


def test_s3_requested_but_not_configured_fails_visibly(tmp_path: Path, store: RunStore) -> None:
    jobs, published = runner(tmp_path, store)
    export_id = submit(jobs, ExportRequest(target=ExportTarget.S3))
    status = asyncio.run(jobs.run(export_id))
    assert status.state is ExportState.FAILED
    assert status.error is not None
    assert status.error.code == "target_unavailable"
    assert isinstance(published[-1], ExportFailed)


def test_cleanup_removes_archives_and_records_only_once_expired(
    tmp_path: Path, store: RunStore
) -> None:
    make_run(store)
    jobs, _ = runner(tmp_path, store, export_ttl=timedelta(hours=1))
    export_id = submit(jobs, ExportRequest())
    status = asyncio.run(jobs.run(export_id))
    assert status.expires_at is not None
    archive = jobs.volume.path(status.filename or "")

    assert jobs.cleanup(now=status.expires_at - timedelta(seconds=1)) == 0
    assert archive.is_file()
    assert jobs.store.get(export_id).state is ExportState.COMPLETED

    assert jobs.cleanup(now=status.expires_at + timedelta(seconds=1)) == 1
    assert not archive.exists()
    with pytest.raises(JobNotFoundError):
        jobs.store.get(export_id)


def test_export_ttl_reads_plain_seconds(
    tmp_path: Path, store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_EXPORT_TTL", "90")
    monkeypatch.setenv("KILN_STORAGE_ROOT", str(store.root))
    monkeypatch.setenv("KILN_EXPORT_ROOT", str(tmp_path / "exports"))
    assert ExportSettings().export_ttl == timedelta(seconds=90)
    monkeypatch.setenv("KILN_EXPORT_TTL", "P2D")
    assert ExportSettings().export_ttl == timedelta(days=2)


def test_an_unreadable_record_fails_the_export_naming_the_run(
    tmp_path: Path, store: RunStore
) -> None:
    record = make_run(store)
    (store.run_dir(record.run_id) / "metadata.json").write_text('{"run_id": "torn')
    jobs, published = runner(tmp_path, store)
    status = asyncio.run(jobs.run(submit(jobs, ExportRequest())))
    assert status.state is ExportState.FAILED
    assert status.error is not None
    assert status.error.code == "record_unreadable"
    assert status.error.run_id == record.run_id
    assert isinstance(published[-1], ExportFailed)
