"""Export jobs on a stack of their own: surviving a crash of export-service, expiry after
KILN_EXPORT_TTL, and the S3 target on a real S3 endpoint (``weed mini``, docs/design.md §7)."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunRecord, RunRequest, RunStatus
from kiln_devstack.processes import ManagedProcess, free_port, wait_until
from kiln_devstack.stack import Stack, StackConfig
from kiln_gateway.auth import DEV_RESEARCHER_TOKEN
from kiln_storage.local import RunStore
from kiln_storage.s3 import s3_client as kiln_s3_client
from support.export_checks import check_rows_against_runs, open_bag
from support.kiln_polling import eventually, wait_final

pytestmark = pytest.mark.integration

AUTH = {"authorization": f"Bearer {DEV_RESEARCHER_TOKEN}"}
S3_KEY, S3_SECRET = "kiln-test", "kiln-test-secret-0123456789"
BUCKET = "kiln-exports"
TTL_SECONDS = 8
READ_BUDGET = 1 << 20  # bytes/s: slow enough to stop a job half-way through
BIG_RUNS, BIG_OUTPUT = 6, 1 << 20


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("weed")
    (base / "data").mkdir()
    (base / "logs").mkdir()
    s3_port = free_port()
    ports = [
        f"-{name}={free_port()}"
        for name in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
            "webdav.port",
            "s3.port.iceberg",
            "s3.port.lance",
        )
    ]
    weed = str(Path(sys.executable).parent / "weed")
    argv = [weed, f"-logdir={base / 'logs'}", "mini", f"-dir={base / 'data'}", "-ip=127.0.0.1"]
    argv += ["-ip.bind=127.0.0.1", "-master.telemetry=false", f"-s3.port={s3_port}", *ports]
    process = ManagedProcess(
        "weed",
        argv,
        base / "weed.log",
        env={"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET},
    )
    process.start()
    endpoint = f"http://127.0.0.1:{s3_port}"

    def answers() -> bool:
        try:
            httpx.get(endpoint, timeout=1)
        except httpx.HTTPError:
            return False
        return True

    try:
        wait_until(answers, 60, "weed mini S3", process)
        client = s3_client(endpoint)
        eventually(lambda: _create_bucket(client), 30, "the S3 bucket")
        yield endpoint
    finally:
        process.stop()


def s3_client(endpoint: str) -> Any:
    return kiln_s3_client(endpoint, region="us-east-1", access_key=S3_KEY, secret_key=S3_SECRET)


def _create_bucket(client: Any) -> bool:
    try:
        client.create_bucket(Bucket=BUCKET)
    except ClientError as exc:
        return exc.response["Error"]["Code"] in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists")
    return True


@pytest.fixture(scope="module")
def jobs_stack(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[Stack]:
    env = {
        "KILN_EXPORT_TTL": str(TTL_SECONDS),
        "KILN_EXPORT_CLEANUP_INTERVAL_SECONDS": "0.5",
        "KILN_EXPORT_MAX_BYTES_PER_SECOND": str(READ_BUDGET),
        "KILN_EXPORT_ACK_WAIT_SECONDS": "3",
        "KILN_EXPORT_S3_URL": f"s3://{BUCKET}/archives",
        "KILN_EXPORT_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
    }
    config = StackConfig(var_dir=tmp_path_factory.mktemp("kiln-jobs-var"), extra_env=env)
    with Stack(config) as running:
        yield running


@pytest.fixture(scope="module")
def client(jobs_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=jobs_stack.gateway_url, timeout=30, headers=AUTH) as c:
        yield c


def status_of(client: httpx.Client, export_id: str) -> dict[str, Any]:
    response = client.get(f"/api/exports/{export_id}")
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


def wait_done(client: httpx.Client, export_id: str, timeout: float = 90) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = status_of(client, export_id)
        return status if status["state"] in ("completed", "failed") else None

    return eventually(probe, timeout, f"export {export_id} to finish")


def big_runs(root: Path, count: int = BIG_RUNS) -> list[str]:
    """Completed runs with large outputs, written with the same storage code media-service
    uses (creating them through the simulator would only be slower)."""
    store = RunStore(root)
    run_ids = []
    for i in range(count):
        run_id = new_run_id()
        store.create_run(run_id, RunRequest(workflow="noise", input_text=f"big {i}"))
        store.add_bytes(run_id, os.urandom(BIG_OUTPUT), "output_image", "png", "image/png", {})

        def complete(record: RunRecord) -> RunRecord:
            return record.model_copy(update={"status": RunStatus.COMPLETED})

        store.update(run_id, complete)
        run_ids.append(run_id)
    return run_ids


def interrupt_and_resume(
    client: httpx.Client, jobs_stack: Stack, tmp_path: Path, run_ids: list[str], kill: bool
) -> None:
    response = client.post("/api/exports", json={"filter": {"run_ids": run_ids}})
    assert response.status_code == 202, response.text
    export_id = response.json()["export_id"]
    eventually(
        lambda: (s := status_of(client, export_id))["state"] == "running" and s["runs_done"] >= 1,
        30,
        "the job to be under way",
    )
    if kill:
        jobs_stack.processes["export"].kill()  # a crash: no goodbye, no nak
    else:
        jobs_stack.stop_service("export")  # SIGTERM: the job is stopped and handed back
    jobs_stack.start_service("export")

    status = wait_done(client, export_id)
    assert status["state"] == "completed", status.get("error")
    assert status["attempt"] == 2, "the job was not interrupted, so nothing was resumed"
    assert status["runs_done"] == status["runs_total"] == len(run_ids)
    archive = tmp_path / "resumed.zip"
    archive.write_bytes(client.get(f"/api/exports/{export_id}/download").content)
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == status["sha256"]
    bag_dir = open_bag(archive, tmp_path / "bag")
    rows = (bag_dir / "data" / "index.csv").read_text().splitlines()
    assert len(rows) == 1 + len(run_ids)


def test_a_job_survives_export_service_being_killed(
    client: httpx.Client, jobs_stack: Stack, tmp_path: Path
) -> None:
    interrupt_and_resume(client, jobs_stack, tmp_path, big_runs(jobs_stack.storage_root), True)


def test_a_job_stopped_by_a_graceful_restart_is_resumed(
    client: httpx.Client, jobs_stack: Stack, tmp_path: Path
) -> None:
    # Longer than the consumer's 5 s shutdown grace, so the stop lands mid-job.
    run_ids = big_runs(jobs_stack.storage_root, 2 * BIG_RUNS)
    interrupt_and_resume(client, jobs_stack, tmp_path, run_ids, False)
    log = (jobs_stack.logs_dir / "export.log").read_text()
    assert "interrupted by shutdown; it will be resumed" in log


def test_expired_exports_are_removed(client: httpx.Client, jobs_stack: Stack) -> None:
    [run_id] = make_noise_runs(client, 1)
    export_id = client.post("/api/exports", json={"filter": {"run_ids": [run_id]}}).json()[
        "export_id"
    ]
    status = wait_done(client, export_id)
    assert status["state"] == "completed"
    archive = jobs_stack.var_dir / "exports" / "archives" / status["filename"]
    assert archive.is_file()

    gone = eventually(
        lambda: client.get(f"/api/exports/{export_id}").status_code == 404,
        TTL_SECONDS + 20,
        "the export to expire",
    )
    assert gone
    assert not archive.exists()
    assert client.get(f"/api/exports/{export_id}/download").json()["error"] == "export_not_found"
    partials = list(archive.parent.glob(".*.partial"))
    assert eventually(
        lambda: not list(archive.parent.glob(".*.partial")),
        TTL_SECONDS + 20,
        f"leftover partials {partials} to be cleaned",
    )


def make_noise_runs(client: httpx.Client, count: int) -> list[str]:
    run_ids = []
    for i in range(count):
        response = client.post("/api/runs", json={"workflow": "noise", "input_text": f"s3 {i}"})
        assert response.status_code == 202, response.text
        run_ids.append(response.json()["run_id"])
    for run_id in run_ids:
        assert wait_final(client, run_id)["status"] == "completed"
    return run_ids


def test_s3_target_multipart_and_presigned_download(
    client: httpx.Client, s3_endpoint: str, tmp_path: Path
) -> None:
    run_ids = make_noise_runs(client, 2)
    response = client.post("/api/exports", json={"filter": {"run_ids": run_ids}, "target": "s3"})
    assert response.status_code == 202, response.text
    export_id = response.json()["export_id"]
    status = wait_done(client, export_id)
    assert status["state"] == "completed", status.get("error")
    assert status["download_url"].startswith(s3_endpoint)

    redirect = client.get(f"/api/exports/{export_id}/download", follow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["location"] == status["download_url"]
    fetched = httpx.get(status["download_url"], timeout=30)
    assert fetched.status_code == 200
    assert hashlib.sha256(fetched.content).hexdigest() == status["sha256"]
    archive = tmp_path / "s3.zip"
    archive.write_bytes(fetched.content)
    check_rows_against_runs(open_bag(archive, tmp_path / "bag"), client, run_ids)

    key = f"archives/{status['filename']}"
    unsigned = httpx.get(f"{s3_endpoint}/{BUCKET}/{key}", timeout=10)
    assert unsigned.status_code == 403, "the bucket must not be readable without a signature"

    s3 = s3_client(s3_endpoint)
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == status["bytes"]

    def object_gone() -> bool:
        try:
            s3.head_object(Bucket=BUCKET, Key=key)
        except ClientError:
            return True
        return False

    assert eventually(object_gone, TTL_SECONDS + 20, "the S3 archive to expire")
