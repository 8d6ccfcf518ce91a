"""media-service's routes do not translate errors: storage and domain errors carry their
status and code, and the one handler answers them (what the routes used to do by hand)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kiln_common.errors import install_error_handlers
from kiln_contracts.ids import new_run_id
from kiln_media.api import router
from kiln_media.catalog import RunCatalog
from kiln_media.config import MediaSettings
from kiln_media.service import MediaService
from kiln_media.state import MediaState
from kiln_storage.index import RunIndex
from kiln_storage.local import RunStore


@pytest.fixture
def client(store: RunStore, service: MediaService, tmp_path: Path) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    settings = MediaSettings(storage_root=store.root, instance_id="media-test")
    catalog = RunCatalog(store, RunIndex(store), "media-test")
    app.state.media = MediaState(settings, service, "sid", None, catalog, store)  # type: ignore[arg-type]
    return TestClient(app, raise_server_exceptions=False)


def test_an_unknown_run_is_a_404_on_every_route(client: TestClient) -> None:
    missing = new_run_id()
    for method, path in (
        ("GET", f"/runs/{missing}"),
        ("GET", f"/runs/{missing}/files/01_input.txt"),
        ("GET", f"/media/image/{missing}"),
        ("DELETE", f"/runs/{missing}"),
        ("PUT", f"/runs/{missing}/entities/01_input.txt/block"),
    ):
        response = client.request(method, path, json={"reason": "x"})
        assert response.status_code == 404, (method, path, response.text)
        assert response.json() == {
            "error": "run_not_found",
            "detail": f"no run {missing} on this storage root",
        }


def test_a_second_create_with_another_request_is_a_409(client: TestClient, run_id: str) -> None:
    body = {"run_id": run_id, "request": {"workflow": "noise", "input_text": "something else"}}
    response = client.post("/runs", json=body)
    assert response.status_code == 409
    assert response.json()["error"] == "run_exists"


def test_bad_names_ids_kinds_cursors_and_instants(client: TestClient, run_id: str) -> None:
    cases = {
        "/runs/not-a-run": (400, "invalid_run_id"),
        f"/runs/{run_id}/files/metadata.json": (400, "invalid_filename"),
        f"/runs/{run_id}/files/09_output_image.png": (404, "file_not_found"),
        f"/media/sound/{run_id}": (404, "not_found"),
        f"/media/image/{run_id}/3": (404, "file_not_found"),
        "/runs?cursor=nonsense": (400, "invalid_cursor"),
        "/runs?since=yesterday": (400, "invalid_request"),
        "/runs?since=2026-01-01T00:00:00": (400, "invalid_request"),
    }
    for path, (status, code) in cases.items():
        response = client.get(path)
        assert (response.status_code, response.json()["error"]) == (status, code), path


def test_a_listed_file_missing_on_disk_is_a_404_and_logged(
    client: TestClient, store: RunStore, run_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    (store.run_dir(run_id) / "01_input.txt").unlink()
    with caplog.at_level(logging.ERROR, logger="kiln.storage"):
        response = client.get(f"/runs/{run_id}/files/01_input.txt")
    assert response.status_code == 404
    assert response.json()["error"] == "file_not_found"
    assert any("missing on disk" in r.getMessage() for r in caplog.records)


def test_a_bug_behind_a_route_is_a_logged_500_not_a_storage_answer(
    client: TestClient, store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(run_id: str) -> None:
        raise TypeError("a programming error")

    monkeypatch.setattr(store, "read", broken)
    response = client.get(f"/runs/{new_run_id()}")
    assert response.status_code == 500
    assert response.json()["error"] == "internal"
