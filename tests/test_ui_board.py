"""The teacher's board and joining by link in a real browser: the board shows a live session
(code, a QR code that decodes to the join link, devices joined, newest results), a tablet joins
through /#/join/<code>, its run appears on the board, and closing ends the code."""

from __future__ import annotations

import re

import pytest
from kiln_gateway.auth import DEV_RESEARCHER_TOKEN
from playwright.sync_api import Page, expect
from support.qr_codes import decode_file
from support.ui_browser import SCREENSHOTS, TABLET, Ui, origin
from test_ui_quality import LOW_CONTRAST_JS

pytestmark = pytest.mark.integration

PROJECTOR = {"width": 1280, "height": 800}
TITLE = "Year 5 art, Tuesday"


def open_board(ui: Ui) -> Page:
    page, _ = ui.open("/#/board", viewport=PROJECTOR)
    page.get_by_label("Researcher token").fill(DEV_RESEARCHER_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Title").fill(TITLE)
    page.get_by_role("button", name="Open a session and show its board").click()
    expect(page.locator("#board-session")).to_have_text(TITLE)
    assert re.search(r"#/board/[0-9a-f-]{36}$", page.url)
    return page


def test_ui_board_shows_a_live_session_a_tablet_joins_by_link_and_its_run_appears(
    ui: Ui,
) -> None:
    board = open_board(ui)
    code = board.locator("#board-code")
    expect(code).to_have_text(re.compile(r"^[A-Z2-9]{6}$"))
    expect(board.locator("#board-devices")).to_have_text("0 devices joined")
    expect(board.get_by_text("Nothing made yet.")).to_be_visible()
    board.wait_for_function("() => document.querySelector('#board-qr').naturalWidth > 0")

    # The QR code on the projector is the join link (decoded from the pixels on screen).
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    qr_shot = SCREENSHOTS / "board-qr.png"
    board.locator("#board-qr").screenshot(path=str(qr_shot))
    join_url = f"{ui.base_url}/#/join/{code.inner_text()}"
    assert decode_file(qr_shot) == [join_url]
    expect(board.locator("#board-how")).to_have_attribute("data-join-url", join_url)

    # A tablet (German) opens the link and is in the session without typing anything.
    tablet, tablet_watch = ui.open(join_url, viewport=TABLET, locale="de-DE")
    expect(tablet.locator("h1")).to_have_text(f"Du bist in „{TITLE}“!")
    expect(tablet.locator("#session-indicator")).to_have_text(f"Workshop: {TITLE}")
    expect(board.locator("#board-devices")).to_have_text("1 device joined")

    tablet.get_by_role("link", name="Los geht's").click()
    tablet.get_by_label("Beschreibe es mit deinen Worten").fill("ein roter Drachen")
    tablet.get_by_text("Weitere Einstellungen").click()
    tablet.locator("input[name=width]").fill("48")
    tablet.locator("input[name=height]").fill("48")
    tablet.get_by_role("button", name="Erzeugen").click()
    expect(tablet.locator("#result img.media")).to_have_attribute("data-state", "loaded")
    run_id = tablet.locator("#progress").get_attribute("data-run-id")

    # The run appears on the board on its own, with its picture, fetched from storage.
    result = board.locator(f"#board-results li[data-run-id='{run_id}']")
    expect(result).to_have_attribute("data-status", "completed")
    expect(result).to_contain_text("ein roter Drachen")
    board.wait_for_function(
        f"() => document.querySelector(\"li[data-run-id='{run_id}'] img\")?.naturalWidth === 48"
    )
    expect(board.get_by_text("Nothing made yet.")).to_be_hidden()

    contrast = board.evaluate(LOW_CONTRAST_JS)
    assert contrast["checked"] > 5
    assert contrast["low"] == [], f"text below WCAG AA contrast: {contrast['low']}"
    ui.shot(board, "board", full_page=False)  # docs/screenshots/board.png is a copy

    # German on the projector too.
    board.locator("#lang-switch button[data-lang=de]").click()
    expect(board.locator("#board-devices")).to_have_text("1 Gerät beigetreten")
    expect(board.get_by_role("heading", name="Neueste Ergebnisse")).to_be_visible()
    board.locator("#lang-switch button[data-lang=en]").click()

    # Closing: the board says so, the code stops working, the tablet is no longer in it.
    board.get_by_role("button", name="Close session").click()
    board.get_by_role("button", name="Yes, close it").click()
    expect(board.locator(".board-closed")).to_have_text(
        "This session is closed. Its code no longer works."
    )
    expect(board.locator("#board-qr")).to_be_hidden()
    late, _ = ui.open(join_url, viewport=TABLET)
    expect(late.locator(".join-wrong")).to_have_text(
        f"There is no open workshop with the code “{code.inner_text()}”. Check the code with "
        "your workshop leader. The workshop may also have ended."
    )
    tablet.reload()
    tablet.wait_for_selector("body[data-ready='true']")
    expect(tablet.locator("#session-indicator")).to_have_text("Nicht in einem Workshop")
    board.reload()
    board.wait_for_selector("body[data-ready='true']")
    expect(board.locator(".board-closed")).to_be_visible()  # also after a reload

    # Everything came from the gateway: no page, script, font or QR code from elsewhere.
    gateway = origin(ui.base_url)
    for watch in ui.watches:
        foreign = [
            url
            for url in watch.requests
            if origin(url) != gateway and not url.startswith(("blob:" + gateway, "data:"))
        ]
        assert not foreign, f"requests that left the gateway: {foreign}"
    assert any("/join-qr.svg" in url for url in ui.watches[0].requests)
    assert tablet_watch.responses_to("/api/sessions/join")[0].status == 200


def test_ui_join_link_with_a_wrong_code_says_so_and_offers_another(ui: Ui) -> None:
    page, _ = ui.open("/#/join/NOPE99", viewport=TABLET)
    expect(page.locator(".join-wrong")).to_have_text(
        "There is no open workshop with the code “NOPE99”. Check the code with your workshop "
        "leader. The workshop may also have ended."
    )
    expect(page.get_by_label("Workshop code")).to_have_value("NOPE99")
    expect(page.locator("#session-indicator")).to_have_text("Not in a workshop")
    # Not a code at all (too long for one) says the same, in the same words.
    page.goto("/#/join/" + "X" * 40)
    expect(page.locator(".join-wrong")).to_contain_text("There is no open workshop with the code")


def test_ui_board_needs_the_researcher_token(ui: Ui) -> None:
    page, watch = ui.open("/#/board/5b8f0a8e-1f0e-4c55-9d1a-3c2b1a0f9e8d", viewport=PROJECTOR)
    expect(page.get_by_label("Researcher token")).to_be_visible()
    assert not [u for u in watch.requests if "/api/sessions/" in u], "asked without the token"
    page.get_by_label("Researcher token").fill(DEV_RESEARCHER_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text(
        "There is no workshop session with this address. Open a new one from the board or the "
        "Research page."
    )
