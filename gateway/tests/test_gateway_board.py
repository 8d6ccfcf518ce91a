"""The teacher's board routes with a fake session store: the join link's QR code drawn as SVG
(decoded here by zxing-cpp, not by the library that drew it), closing, and who may ask."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from types import SimpleNamespace

import pytest
import zxingcpp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kiln_common.errors import install_error_handlers
from kiln_contracts.records import SafetyLevel, utc_now
from kiln_gateway.board import join_qr_svg, router
from kiln_gateway.sessions import WorkshopSession
from PIL import Image

TOKEN = "a-researcher-token-for-these-tests"
RESEARCHER = {"authorization": f"Bearer {TOKEN}"}
SESSION_ID = "5b8f0a8e-1f0e-4c55-9d1a-3c2b1a0f9e8d"
SVG = "{http://www.w3.org/2000/svg}"


class FakeSessions:
    def __init__(self) -> None:
        now = utc_now()
        self.sessions = {
            SESSION_ID: WorkshopSession(
                session_id=SESSION_ID,
                code="K7QX2M",
                title="Year 5 art",
                safety_level=SafetyLevel.KIDS,
                created_at=now,
                expires_at=now + timedelta(hours=2),
            )
        }
        self.members = {SESSION_ID: 3}

    async def find(self, session_id: str) -> WorkshopSession | None:
        return self.sessions.get(session_id)

    async def close(self, session_id: str) -> WorkshopSession | None:
        session = self.sessions.get(session_id)
        if session is not None and not session.expired:
            session = self.sessions[session_id] = session.model_copy(
                update={"expires_at": utc_now()}
            )
        return session

    async def member_count(self, session_id: str) -> int:
        return self.members.get(session_id, 0)


def make_client(public_url: str | None) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.gateway = SimpleNamespace(
        settings=SimpleNamespace(gateway_public_url=public_url),
        sessions=FakeSessions(),
        researcher_token=TOKEN,
    )
    return TestClient(app)


def decode_svg(svg: bytes) -> str:
    """Rasterise segno's SVG (one path of horizontal runs, ``M``/``m`` moves and ``h`` lines
    along each row's middle) and read it back as a QR code."""
    root = ET.fromstring(svg)
    width, height = (int(v) for v in root.attrib["viewBox"].split()[2:])
    image = Image.new("L", (width, height), 255)
    [line] = [p for p in root.iter(f"{SVG}path") if p.get("stroke") == "#000"]
    x = y = 0.0
    for command, numbers in re.findall(r"([MmHh])([-\d. ]+)", line.attrib["d"]):
        values = [float(n) for n in numbers.split()]
        if command == "M":
            x, y = values
        elif command == "m":
            x, y = x + values[0], y + values[1]
        else:
            run = values[0] if command == "h" else values[0] - x
            for column in range(int(x), int(x + run)):
                image.putpixel((column, int(y)), 0)
            x += run
    big = image.resize((width * 8, height * 8), Image.Resampling.NEAREST)
    [found] = zxingcpp.read_barcodes(big)
    return found.text


def test_the_qr_code_is_the_join_link_on_the_public_address() -> None:
    client = make_client("http://192.168.1.20:8080")
    response = client.get(f"/api/sessions/{SESSION_ID}/join-qr.svg", headers=RESEARCHER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cache-control"] == "no-store"
    assert decode_svg(response.content) == "http://192.168.1.20:8080/#/join/K7QX2M"
    # Nothing in it points anywhere: no link, no font, no image from another origin.
    assert b"href" not in response.content
    assert re.findall(rb"https?://[^\"<]+", response.content) == [
        b"http://www.w3.org/2000/svg",
        b"http://192.168.1.20:8080/#/join/K7QX2M",  # the title, read by screen readers
    ]


def test_without_a_public_address_the_link_names_the_address_asked() -> None:
    board = make_client(None).get(f"/api/sessions/{SESSION_ID}/board", headers=RESEARCHER)
    assert board.status_code == 200
    body = board.json()
    assert body["join_url"] == "http://testserver/#/join/K7QX2M"
    assert (body["open"], body["devices_joined"], body["session"]["title"]) == (
        True,
        3,
        "Year 5 art",
    )


def test_long_links_still_decode() -> None:
    url = "http://[fd00:1234:5678:9abc::20]:8080/#/join/K7QX2M"
    assert decode_svg(join_qr_svg(url)) == url


@pytest.mark.parametrize("path", ["board", "join-qr.svg"])
def test_only_a_researcher_sees_a_session(path: str) -> None:
    client = make_client(None)
    assert client.get(f"/api/sessions/{SESSION_ID}/{path}").status_code == 401
    wrong = {"authorization": "Bearer not-the-token"}
    response = client.get(f"/api/sessions/{SESSION_ID}/{path}", headers=wrong)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


def test_unknown_and_malformed_sessions() -> None:
    client = make_client(None)
    unknown = client.get(
        "/api/sessions/00000000-0000-4000-8000-000000000000/board", headers=RESEARCHER
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "session_not_found"
    malformed = client.get("/api/sessions/not-a-session/join-qr.svg", headers=RESEARCHER)
    assert malformed.status_code == 422
    assert malformed.json()["error"] == "invalid_request"
    closing = client.post(
        "/api/sessions/00000000-0000-4000-8000-000000000000/close", headers=RESEARCHER
    )
    assert closing.status_code == 404


def test_closing_ends_the_session_and_closing_again_changes_nothing() -> None:
    client = make_client(None)
    assert client.post(f"/api/sessions/{SESSION_ID}/close").status_code == 401
    closed = client.post(f"/api/sessions/{SESSION_ID}/close", headers=RESEARCHER)
    assert closed.status_code == 200
    board = client.get(f"/api/sessions/{SESSION_ID}/board", headers=RESEARCHER).json()
    assert board["open"] is False
    again = client.post(f"/api/sessions/{SESSION_ID}/close", headers=RESEARCHER)
    assert again.json()["expires_at"] == closed.json()["expires_at"]
