"""Participants are pseudonymous devices (a signed cookie the gateway issues and rotates),
optionally in a workshop session joined by a short code; the researcher role is a token.
The safety level of a run comes from its session, never from the client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from kiln_devstack.stack import Stack
from support.kiln_gateway_helpers import RESEARCHER, RUN_BODY, gateway_replica
from support.kiln_polling import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def device(stack: Stack) -> Iterator[httpx.Client]:
    """A second participant's browser (its own cookie jar)."""
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
        yield client


def open_session(gateway: httpx.Client, **body: object) -> dict[str, object]:
    response = gateway.post(
        "/api/sessions", json={"title": "Year 5 art", **body}, headers=RESEARCHER
    )
    assert response.status_code == 201, response.text
    session: dict[str, object] = response.json()
    return session


def test_the_gateway_issues_a_signed_pseudonymous_device_cookie(gateway: httpx.Client) -> None:
    first = gateway.get("/api/me")
    assert first.status_code == 200
    cookie = first.headers["set-cookie"]
    assert cookie.startswith("kiln_device=")
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    me = first.json()
    assert me["session"] is None
    assert me["researcher"] is False
    device_id = me["device_id"]
    assert device_id in gateway.cookies["kiln_device"]

    again = gateway.get("/api/me")
    assert again.json()["device_id"] == device_id
    assert "set-cookie" not in again.headers  # nothing changed, nothing re-sent


def test_a_forged_cookie_gets_a_new_device(gateway: httpx.Client, stack: Stack) -> None:
    device_id = gateway.get("/api/me").json()["device_id"]
    other = "11111111-1111-4111-8111-111111111111"
    forged = gateway.cookies["kiln_device"].replace(device_id, other)
    with httpx.Client(base_url=stack.gateway_url, cookies={"kiln_device": forged}) as client:
        me = client.get("/api/me").json()
    assert me["device_id"] not in (device_id, other)


def test_device_ids_rotate_after_the_configured_period_and_keep_the_session(
    stack: Stack, gateway: httpx.Client
) -> None:
    session = open_session(gateway)
    # About one second: KILN_GATEWAY_DEVICE_ROTATION_HOURS is in hours.
    with (
        gateway_replica(
            stack, "gateway-rotating", KILN_GATEWAY_DEVICE_ROTATION_HOURS="0.0003"
        ) as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        assert client.post("/api/sessions/join", json={"code": session["code"]}).status_code == 200
        first = client.get("/api/me").json()
        rotated = eventually(
            lambda: (me := client.get("/api/me").json())["device_id"] != first["device_id"] and me,
            timeout=10,
            what="the device id to rotate",
        )
    assert rotated["session"]["session_id"] == session["session_id"]


def test_only_researchers_open_sessions(gateway: httpx.Client) -> None:
    body = {"title": "x"}
    missing = gateway.post("/api/sessions", json=body)
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    wrong = gateway.post("/api/sessions", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert wrong.json()["error"] == "forbidden"


def test_joining_a_session_by_code_sets_the_runs_session_and_safety_level(
    gateway: httpx.Client, device: httpx.Client
) -> None:
    session = open_session(gateway, safety_level="youth")
    code = str(session["code"])
    assert len(code) == 6
    # Codes are forgiving: lower case and spaces, as children type them.
    joined = device.post("/api/sessions/join", json={"code": f" {code[:3].lower()} {code[3:]}"})
    assert joined.status_code == 200, joined.text
    assert joined.json()["session_id"] == session["session_id"]
    assert device.get("/api/me").json()["session"]["code"] == code

    run = device.post("/api/runs", json=RUN_BODY)
    assert run.status_code == 202, run.text
    record = device.get(f"/api/runs/{run.json()['run_id']}").json()
    assert record["request"]["session_id"] == session["session_id"]
    assert record["request"]["safety_level"] == "youth"
    assert record["request"]["device_id"] == device.get("/api/me").json()["device_id"]


def test_without_a_session_the_configured_default_safety_level_applies(
    device: httpx.Client,
) -> None:
    run = device.post("/api/runs", json=RUN_BODY)
    record = device.get(f"/api/runs/{run.json()['run_id']}").json()
    assert record["request"]["safety_level"] == "kids"
    assert record["request"]["session_id"] is None


def test_a_client_cannot_choose_its_safety_level(device: httpx.Client) -> None:
    response = device.post("/api/runs", json={**RUN_BODY, "safety_level": "youth"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_an_unknown_code_is_a_404(device: httpx.Client) -> None:
    for code in ("ZZZZZZ", "no", "x" * 32):
        response = device.post("/api/sessions/join", json={"code": code})
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "session_not_found"


def test_participants_see_their_own_and_their_sessions_runs_only(
    stack: Stack, gateway: httpx.Client, device: httpx.Client
) -> None:
    mine = gateway.post("/api/runs", json=RUN_BODY).json()["run_id"]
    # The owner fetches a file first, so the gateway now remembers who the run belongs to ...
    assert gateway.get(f"/api/runs/{mine}/files/01_input.txt").status_code == 200
    # ... and another device still neither reads nor follows nor cancels it.
    for path in (f"/api/runs/{mine}", f"/api/runs/{mine}/files/01_input.txt"):
        response = device.get(path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"] == "run_not_found"
    assert device.post(f"/api/runs/{mine}/cancel").status_code == 404
    # A researcher reads every run.
    assert device.get(f"/api/runs/{mine}", headers=RESEARCHER).status_code == 200
    # A wrong token is refused outright, never treated as a participant.
    assert device.get(f"/api/runs/{mine}", headers={"Authorization": "Bearer x"}).status_code == 403

    # Two devices in one workshop session see each other's session runs.
    session = open_session(gateway)
    for client in (gateway, device):
        assert client.post("/api/sessions/join", json={"code": session["code"]}).status_code == 200
    shared = gateway.post("/api/runs", json=RUN_BODY).json()["run_id"]
    assert device.get(f"/api/runs/{shared}").status_code == 200
    assert device.get(f"/api/runs/{shared}/files/01_input.txt").content == b"a red kite"
