"""The board's routes on the real stack (NATS KV): devices counted once each, closing ends the
code and the devices' membership, the runs stay visible to the researcher."""

from __future__ import annotations

import httpx
import pytest
from kiln_gateway.auth import DEV_RESEARCHER_TOKEN
from support.kiln_polling import wait_final

pytestmark = pytest.mark.integration

RESEARCHER = {"authorization": f"Bearer {DEV_RESEARCHER_TOKEN}"}


def test_devices_are_counted_once_and_closing_ends_code_and_membership(
    gateway: httpx.Client,
) -> None:
    session = gateway.post("/api/sessions", json={"title": "counting"}, headers=RESEARCHER).json()
    board_path = f"/api/sessions/{session['session_id']}/board"
    assert gateway.get(board_path, headers=RESEARCHER).json()["devices_joined"] == 0
    base = str(gateway.base_url)
    with (
        httpx.Client(base_url=base, timeout=10) as one,
        httpx.Client(base_url=base, timeout=10) as two,
    ):
        for device in (one, two, one):  # the first device joins twice
            joined = device.post("/api/sessions/join", json={"code": session["code"].lower()})
            assert joined.status_code == 200, joined.text
        board = gateway.get(board_path, headers=RESEARCHER).json()
        assert (board["devices_joined"], board["open"]) == (2, True)
        run = one.post("/api/runs", json={"workflow": "noise", "input_text": "a kite"}).json()
        wait_final(one, run["run_id"])

        closed = gateway.post(f"/api/sessions/{session['session_id']}/close", headers=RESEARCHER)
        assert closed.status_code == 200
        board = gateway.get(board_path, headers=RESEARCHER).json()
        assert (board["devices_joined"], board["open"]) == (2, False)
        refused = two.post("/api/sessions/join", json={"code": session["code"]})
        assert refused.status_code == 404
        assert refused.json()["error"] == "session_not_found"
        assert one.get("/api/me").json()["session"] is None
    runs = gateway.get(
        "/api/runs", params={"session_id": session["session_id"]}, headers=RESEARCHER
    ).json()
    assert [r["run_id"] for r in runs["items"]] == [run["run_id"]]
