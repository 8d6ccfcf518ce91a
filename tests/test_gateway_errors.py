"""Upstream trouble reaches clients in the one JSON error shape with an honest status: a
timeout is a 504, an upstream 5xx (even an HTML one) a 502, never HTML or a traceback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from kiln_devstack.stack import Stack
from support.kiln_gateway_helpers import RUN_BODY, gateway_replica

pytestmark = pytest.mark.integration

RUN_ID = "01900000-0000-7000-8000-000000000000"


class _BrokenUpstream(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = b"<html><body><h1>500 Internal Server Error</h1>Traceback ...</body></html>"
        self.send_response(500)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def broken_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BrokenUpstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def silent_upstream() -> Iterator[str]:
    """Accepts connections (the kernel's backlog does) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def assert_json_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == code
    assert "<html" not in response.text
    assert "Traceback" not in response.text


def test_an_upstream_that_does_not_answer_is_a_504(stack: Stack, silent_upstream: str) -> None:
    with gateway_replica(
        stack,
        "gateway-silent-media",
        ready_path="/healthz",
        KILN_MEDIA_URL=silent_upstream,
        KILN_GATEWAY_UPSTREAM_TIMEOUT_SECONDS="0.5",
    ) as url:
        assert_json_error(httpx.get(f"{url}/api/runs/{RUN_ID}"), 504, "upstream_timeout")
        assert_json_error(httpx.post(f"{url}/api/runs", json=RUN_BODY), 504, "upstream_timeout")
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["media-service"] != "ok"


def test_an_upstream_5xx_html_page_is_a_json_502(stack: Stack, broken_upstream: str) -> None:
    with gateway_replica(
        stack, "gateway-broken-media", ready_path="/healthz", KILN_MEDIA_URL=broken_upstream
    ) as url:
        assert_json_error(httpx.get(f"{url}/api/runs/{RUN_ID}"), 502, "upstream_error")
        assert_json_error(
            httpx.get(f"{url}/api/runs/{RUN_ID}/files/03_output_image.png"), 502, "upstream_error"
        )
        assert_json_error(httpx.post(f"{url}/api/runs", json=RUN_BODY), 502, "upstream_error")
