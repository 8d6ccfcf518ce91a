"""Galleries and the run page in a real browser: Mine, Ours, newest first, more on scroll,
every media kind played from storage (video with seeking)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from kiln_gateway.auth import DEV_RESEARCHER_TOKEN
from playwright.sync_api import APIRequestContext, Page, expect
from support.ui_browser import Ui

pytestmark = pytest.mark.integration

RESEARCHER = {"authorization": f"Bearer {DEV_RESEARCHER_TOKEN}"}
SMALL = {"width": 32, "height": 24}


def make_runs(
    request: APIRequestContext, count: int, prompt: str, workflow: str = "noise", **params: Any
) -> list[str]:
    """Runs made with the page's own device cookie (the browser context's request API)."""
    run_ids = []
    for i in range(count):
        response = request.post(
            "/api/runs",
            data={"workflow": workflow, "input_text": f"{prompt} {i}", "params": params},
        )
        assert response.status == 202, response.text()
        run_ids.append(response.json()["run_id"])
    deadline = time.monotonic() + 60
    for run_id in run_ids:
        while (status := request.get(f"/api/runs/{run_id}").json()["status"]) not in (
            "completed",
            "failed",
        ):
            assert time.monotonic() < deadline, f"run {run_id} still {status}"
            time.sleep(0.1)
        assert status == "completed", run_id
    return run_ids


def gallery_ids(page: Page) -> list[str]:
    return page.locator("#gallery li.card").evaluate_all("cards => cards.map(c => c.dataset.runId)")


def test_ui_mine_newest_first_and_more_on_scroll(ui: Ui) -> None:
    page, watch = ui.open("/", viewport={"width": 800, "height": 600})
    run_ids = make_runs(page.request, 15, "a paper boat", **SMALL)

    page.get_by_role("link", name="Mine").click()
    cards = page.locator("#gallery li.card")
    expect(cards).to_have_count(12)  # one page: the screen is full, nothing more is asked for
    expect(page.locator("#gallery img.thumb").first).to_be_visible()
    ui.shot(page, full_page=False)

    page.locator(".sentinel").scroll_into_view_if_needed()
    expect(cards).to_have_count(15)
    expect(page.get_by_text("That is everything.")).to_be_visible()
    # Newest first: UUIDv7 ids sort by creation time.
    assert gallery_ids(page) == sorted(run_ids, reverse=True)
    pages = [r for r in watch.responses_to("/api/runs") if r.status == 200]
    assert len(pages) == 2
    assert "cursor=" in pages[1].url

    # Every thumbnail came from storage through the gateway.
    thumbs = page.locator("#gallery img.thumb").evaluate_all("imgs => imgs.map(i => i.src)")
    assert len(thumbs) == 15
    assert all("/api/runs/" in src and "/files/" in src for src in thumbs)


def test_ui_open_a_run_shows_prompt_workflow_params_and_media(ui: Ui) -> None:
    page, _ = ui.open("/")
    [run_id] = make_runs(page.request, 1, "a green dragon", width=40, height=30, strength=0.25)
    page.goto("/#/mine")
    page.locator(f"#gallery li[data-run-id='{run_id}'] a").click()
    detail = page.locator("#run-detail")
    expect(detail).to_contain_text("a green dragon 0")
    expect(detail).to_contain_text("Noise picture")
    expect(detail.locator("dl.params")).to_contain_text("width")
    expect(detail.locator("dl.params")).to_contain_text("0.25")
    image = detail.locator("img.media")
    expect(image).to_have_attribute("data-state", "loaded")
    assert image.evaluate("img => img.naturalWidth") == 40
    assert page.url.endswith(f"#/run/{run_id}")
    ui.shot(page)


@pytest.mark.parametrize(
    ("workflow", "params", "tag"),
    [
        ("animation", {"width": 48, "height": 32, "frames": 4}, "img"),
        ("audio", {"duration": 1.0}, "audio"),
        ("video", {"width": 64, "height": 64, "frames": 24, "fps": 12.0}, "video"),
    ],
    ids=["animation", "audio", "video"],
)
def test_ui_every_media_kind_plays_from_storage(
    ui: Ui, gateway: httpx.Client, workflow: str, params: dict[str, Any], tag: str
) -> None:
    available = {w["name"] for w in gateway.get("/api/workflows").json()}
    assert workflow in available, f"the pipeline offers no {workflow} workflow: {available}"
    page, watch = ui.open("/")
    [run_id] = make_runs(page.request, 1, f"a {workflow}", workflow, **params)
    page.goto(f"/#/run/{run_id}")
    media = page.locator(f"#run-detail {tag}.media")
    expect(media).to_have_attribute("data-state", "loaded")
    src = media.get_attribute("src")
    assert src is not None
    assert src.startswith(f"/api/runs/{run_id}/files/")
    if tag == "video":
        # Seeking needs Range requests answered with 206 from storage, through the gateway.
        duration = media.evaluate("v => v.duration")
        assert duration == pytest.approx(2.0, abs=0.2)
        media.evaluate(
            "v => new Promise(done => { v.addEventListener('seeked', done, {once: true});"
            " v.currentTime = 1.5; })"
        )
        assert media.evaluate("v => v.currentTime") == pytest.approx(1.5, abs=0.1)
        assert any(r.status == 206 for r in watch.responses_to(src))
    if tag == "audio":
        assert media.evaluate("a => a.duration") == pytest.approx(1.0, abs=0.1)
    ui.shot(page)


def test_ui_ours_after_joining_a_workshop_session(ui: Ui, gateway: httpx.Client) -> None:
    created = gateway.post("/api/sessions", json={"title": "Tuesday art club"}, headers=RESEARCHER)
    assert created.status_code == 201, created.text
    session = created.json()

    page, _ = ui.open("/#/ours")
    expect(page.get_by_text("Join your workshop")).to_be_visible()
    page.get_by_label("Workshop code").fill(session["code"].lower())
    page.get_by_role("button", name="Join").click()
    expect(page.locator("#session-indicator")).to_have_text("Workshop: Tuesday art club")

    # A second device joins the same session and makes something; so does this one.
    friend, _ = ui.open("/")
    joined = friend.request.post("/api/sessions/join", data={"code": session["code"]})
    assert joined.status == 200, joined.text()
    [theirs] = make_runs(friend.request, 1, "a friend's comet", **SMALL)
    [mine] = make_runs(page.request, 1, "my own moon", **SMALL)

    page.goto("/#/create")
    page.get_by_role("link", name="Ours").click()
    expect(page.locator("#gallery li.card")).to_have_count(2)
    assert gallery_ids(page) == [mine, theirs]
    ui.shot(page)

    page.get_by_role("link", name="Mine").click()
    expect(page.locator("#gallery li.card")).to_have_count(1)
    assert gallery_ids(page) == [mine]
