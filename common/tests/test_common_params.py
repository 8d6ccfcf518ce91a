"""Path parameters are validated once, by type, and a bad one is a 400 JSON error with its code."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kiln_common.errors import install_error_handlers
from kiln_common.params import EntityFilenamePath, ExportIdPath, RunIdPath, SessionIdPath
from kiln_contracts.ids import new_run_id


def params_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/runs/{run_id}/files/{filename}")
    async def file(run_id: RunIdPath, filename: EntityFilenamePath) -> dict[str, str]:
        return {"run_id": run_id, "filename": filename}

    @app.get("/exports/{export_id}")
    async def export(export_id: ExportIdPath) -> dict[str, str]:
        return {"export_id": export_id}

    @app.get("/sessions/{session_id}")
    async def session(session_id: SessionIdPath) -> dict[str, str]:
        return {"session_id": session_id}

    return app


client = TestClient(params_app(), raise_server_exceptions=False)


def test_good_path_parameters_reach_the_route() -> None:
    run_id = new_run_id()
    response = client.get(f"/runs/{run_id}/files/03_output_image.png")
    assert response.json() == {"run_id": run_id, "filename": "03_output_image.png"}


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/runs/not-a-uuid/files/03_output_image.png", "invalid_run_id"),
        ("/runs/01900000-0000-4000-8000-000000000000/files/03_output_image.png", "invalid_run_id"),
        (f"/runs/{new_run_id()}/files/metadata.json", "invalid_filename"),
        (f"/runs/{new_run_id()}/files/03_output_image.PNG", "invalid_filename"),
        ("/exports/not-an-id", "invalid_export_id"),
        ("/exports/01900000-0000-7000-8000-00000000000A", "invalid_export_id"),
    ],
)
def test_a_malformed_path_parameter_is_a_400_json_error(path: str, code: str) -> None:
    response = client.get(path)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == code


@pytest.mark.parametrize(
    "session_id", ["not-a-uuid", "5B8F0A8E-1F0E-4C55-9D1A-3C2B1A0F9E8D", "x" * 40]
)
def test_a_malformed_session_id_is_a_422_json_error(session_id: str) -> None:
    response = client.get(f"/sessions/{session_id}")
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    good = "5b8f0a8e-1f0e-4c55-9d1a-3c2b1a0f9e8d"
    assert client.get(f"/sessions/{good}").json() == {"session_id": good}
