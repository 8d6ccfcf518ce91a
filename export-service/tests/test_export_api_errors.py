"""export-service's routes: an unknown export answers by itself (404), NATS failing to take
a request is a 503, and a bug is a logged 500, never an "unavailable"."""

from __future__ import annotations

from pathlib import Path

import nats.errors
import pytest
from export_runs import volume_jobs
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kiln_common.errors import install_error_handlers
from kiln_contracts.exports import ExportMessage, new_export_id
from kiln_export.api import router
from kiln_export.config import ExportSettings
from kiln_export.state import ExportServiceState


class Publish:
    def __init__(self) -> None:
        self.error: Exception | None = None

    async def __call__(self, message: ExportMessage) -> None:
        if self.error is not None:
            raise self.error


@pytest.fixture
def publish() -> Publish:
    return Publish()


@pytest.fixture
def client(tmp_path: Path, publish: Publish) -> TestClient:
    settings = ExportSettings(storage_root=tmp_path / "storage", export_root=tmp_path / "exports")
    jobs = volume_jobs(settings, publish)
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.export = ExportServiceState(settings, None, jobs, None)  # type: ignore[arg-type]
    return TestClient(app, raise_server_exceptions=False)


def jobs_on_disk(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "exports" / "jobs").glob("*.json"))


def test_an_unknown_export_is_a_404(client: TestClient) -> None:
    export_id = new_export_id()
    response = client.get(f"/exports/{export_id}")
    assert response.status_code == 404
    assert response.json() == {
        "error": "export_not_found",
        "detail": f"no export {export_id} (expired exports are removed)",
    }


def test_nats_refusing_the_request_is_a_503_and_leaves_no_job(
    client: TestClient, publish: Publish, tmp_path: Path
) -> None:
    publish.error = nats.errors.NoServersError()
    response = client.post("/exports", json={"filter": {}})
    assert response.status_code == 503
    assert response.json()["error"] == "queue_unavailable"
    assert jobs_on_disk(tmp_path) == []


def test_a_bug_while_queueing_is_a_500_and_leaves_no_job(
    client: TestClient, publish: Publish, tmp_path: Path
) -> None:
    publish.error = TypeError("a programming error")
    response = client.post("/exports", json={"filter": {}})
    assert response.status_code == 500
    assert response.json()["error"] == "internal"
    assert jobs_on_disk(tmp_path) == []


def test_a_queued_export_is_accepted(client: TestClient, tmp_path: Path) -> None:
    response = client.post("/exports", json={"filter": {}})
    assert response.status_code == 202, response.text
    assert len(jobs_on_disk(tmp_path)) == 1
