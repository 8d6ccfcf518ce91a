"""The web UI's static serving (the browser tests in tests/test_ui_*.py cover the pages)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kiln_common.errors import install_error_handlers
from kiln_gateway import web
from kiln_gateway.web import WEB_DIR, install_web


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    install_web(app)
    return TestClient(app)


def test_index_is_served_with_a_same_origin_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/app.js">' in response.text
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert client.head("/").status_code == 200


def test_scripts_are_served_as_javascript_and_revalidated(client: TestClient) -> None:
    response = client.get("/ui/app.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["etag"]
    assert (
        client.get("/ui/app.js", headers={"if-none-match": response.headers["etag"]}).status_code
        == 304
    )


def test_a_missing_file_is_a_json_404(client: TestClient) -> None:
    response = client.get("/ui/nothing.js")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_every_module_import_names_a_shipped_file() -> None:
    """A wrong relative import would only show as a blank page; catch it without a browser."""
    scripts = sorted(WEB_DIR.rglob("*.js"))
    assert len(scripts) >= 5
    for script in scripts:
        for target in re.findall(r'from "(\.{1,2}/[^"]+)"', script.read_text()):
            assert (script.parent / target).resolve().is_file(), f"{script.name}: {target}"


def test_missing_ui_files_stop_start_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(web, "WEB_DIR", tmp_path)
    with pytest.raises(RuntimeError, match="web UI is missing"):
        install_web(FastAPI())
