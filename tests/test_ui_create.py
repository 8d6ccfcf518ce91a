"""The Create page in a real browser: generate → live progress → the stored image; failures."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kiln_gateway.auth import DEV_RESEARCHER_TOKEN
from playwright.sync_api import Page, expect
from support.kiln_models_testkit import checkpoint_installed
from support.ui_browser import Ui

pytestmark = pytest.mark.integration

RESEARCHER = {"authorization": f"Bearer {DEV_RESEARCHER_TOKEN}"}
SD15_TITLE = "Picture from words (Stable Diffusion 1.5)"


@pytest.fixture
def slow_nodes(simulator: httpx.Client) -> Iterator[None]:
    """Every simulated node takes a moment, so a run is visibly in progress for a while."""
    assert simulator.post("/sim/faults", json={"node_delay_seconds": 0.6}).status_code == 200
    try:
        yield
    finally:
        simulator.post("/sim/faults", json={"node_delay_seconds": None})


def generate(page: Page, prompt: str, workflow_title: str = "Noise picture") -> None:
    page.get_by_label(workflow_title).check()
    page.get_by_label("Describe it in your own words").fill(prompt)
    if workflow_title == "Noise picture":  # a small picture is quicker
        page.get_by_text("More settings").click()
        page.locator("input[name=width]").fill("64")
        page.locator("input[name=height]").fill("48")
    page.get_by_role("button", name="Generate").click()


def test_ui_generate_shows_progress_then_the_stored_image(
    ui: Ui, gateway: httpx.Client, slow_nodes: None, tmp_path: Path
) -> None:
    page, watch = ui.open("/")
    expect(page.locator("label.choice", has_text="Noise picture")).to_contain_text("Picture")
    generate(page, "a red kite over the sea")

    # Live progress from the run's event stream: the state moves to "running" and the bar
    # fills part-way while the run is still being made.
    panel = page.locator("#progress")
    expect(panel).to_have_attribute("data-status", "running", timeout=15_000)
    page.wait_for_function(
        "() => { const p = document.querySelector('#progress');"
        " const bar = p.querySelector('progress');"
        " return p.dataset.status === 'running' && bar.value > 0 && bar.value < 1; }"
    )
    run_id = panel.get_attribute("data-run-id")
    assert run_id

    image = page.locator("#result img.media")
    expect(image).to_have_attribute("data-state", "loaded", timeout=30_000)
    src = image.get_attribute("src")
    assert src == f"/api/runs/{run_id}/files/03_output_image.png"
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [64, 48]
    expect(panel).to_have_attribute("data-status", "completed")

    # The browser got the bytes from storage, and they are the stored entity's bytes.
    record = gateway.get(f"/api/runs/{run_id}", headers=RESEARCHER).json()
    entity = next(e for e in record["entities"] if e["filename"] == "03_output_image.png")
    served = watch.responses_to(src)
    assert served, "the page never asked the gateway for the image"
    assert served[0].status == 200
    assert served[0].headers["content-type"] == "image/png"
    assert hashlib.sha256(served[0].body()).hexdigest() == entity["sha256"]
    # The event stream was really used (not polling).
    assert watch.responses_to(f"/api/runs/{run_id}/events")

    with page.expect_download() as download_info:
        page.locator("#result").get_by_role("link", name="Download").click()
    saved = tmp_path / "download.png"
    download_info.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == entity["sha256"]
    ui.shot(page)


def test_ui_offers_only_workflows_the_backends_can_run(
    ui: Ui, gateway: httpx.Client, simulator: httpx.Client
) -> None:
    # The simulator has no checkpoint: Stable Diffusion is not offered to participants.
    page, _ = ui.open("/")
    expect(page.get_by_label("Noise picture")).to_be_visible()
    expect(page.get_by_label(SD15_TITLE)).to_have_count(0)
    with checkpoint_installed(simulator, gateway):
        page, _ = ui.open("/")
        expect(page.get_by_label(SD15_TITLE)).to_be_visible()
        ui.shot(page)


def test_ui_refused_run_shows_its_reason_in_plain_words(
    ui: Ui, gateway: httpx.Client, simulator: httpx.Client
) -> None:
    with checkpoint_installed(simulator, gateway):
        page, _ = ui.open("/")
        page.get_by_label(SD15_TITLE).check()
        page.get_by_label("Describe it in your own words").fill("a cat in a hat")
        page.get_by_text("More settings").click()
        page.locator("input[name=checkpoint]").fill("not-installed.safetensors")
        page.get_by_role("button", name="Generate").click()
        failure = page.locator("#result .failure")
        expect(failure).to_be_visible(timeout=30_000)
        expect(failure).to_contain_text("does not have what this needs")
        # The system's own words name the missing file.
        expect(failure).to_contain_text(
            "checkpoint not-installed.safetensors is not installed on any backend"
        )
        expect(page.locator("#progress")).to_have_attribute("data-status", "failed")
        # Never a placeholder pretending to be a result.
        assert page.locator("#result img, #result audio, #result video").count() == 0
        ui.shot(page)


def test_ui_node_error_shows_its_reason(ui: Ui, simulator: httpx.Client) -> None:
    fault = {
        "node_error": {
            "class_type": "ImageAddNoise",
            "message": "the noise generator ran out of colours",
            "times": 1,
        }
    }
    assert simulator.post("/sim/faults", json=fault).status_code == 200
    try:
        page, _ = ui.open("/")
        generate(page, "a stormy sky")
        failure = page.locator("#result .failure")
        expect(failure).to_be_visible(timeout=30_000)
        expect(failure).to_contain_text("had a problem while making it")
        expect(failure).to_contain_text("the noise generator ran out of colours")
        assert page.locator("#result img").count() == 0
        ui.shot(page)
    finally:
        simulator.post("/sim/faults", json={"node_error": None})


def test_ui_does_not_offer_a_workflow_the_pipeline_cannot_run(
    ui: Ui, gateway: httpx.Client
) -> None:
    # The shared stack has no chat endpoint, so noise_translated (one text stage) is unavailable.
    listed = {w["name"]: w for w in gateway.get("/api/workflows").json()}
    assert listed["noise_translated"]["unavailable_reason"]
    page, _ = ui.open("/")
    expect(page.locator("label.choice", has_text="Noise picture")).to_be_visible()
    expect(page.locator("label.choice", has_text="Translated noise")).to_have_count(0)


@pytest.mark.parametrize(
    ("locale", "labels", "stopping", "stopped"),
    [
        (
            "en-US",
            ("Noise picture", "Describe it in your own words", "Generate"),
            "Stopping…",
            "Stopped",
        ),
        (
            "de-DE",
            ("Rauschbild", "Beschreibe es mit deinen Worten", "Erzeugen"),
            "Wird abgebrochen…",
            "Abgebrochen",
        ),
    ],
)
def test_ui_a_cancel_in_the_last_node_shows_stopping_until_the_backend_confirms(
    ui: Ui,
    gateway: httpx.Client,
    simulator: httpx.Client,
    locale: str,
    labels: tuple[str, str, str],
    stopping: str,
    stopped: str,
) -> None:
    # Three nodes of 2 s; ComfyUI (and the simulator) honour an interrupt only between nodes,
    # so a cancel in the last one waits for it to finish.
    assert simulator.post("/sim/faults", json={"node_delay_seconds": 2.0}).status_code == 200
    try:
        page, _ = ui.open("/", locale=locale)
        workflow, prompt, generate_button = labels
        page.get_by_label(workflow).check()
        page.get_by_label(prompt).fill("a kite")
        page.get_by_role("button", name=generate_button).click()
        panel = page.locator("#progress")
        # Two of three nodes done: the last one is running.
        page.wait_for_function(
            "() => document.querySelector('#progress progress')?.value >= 0.66", timeout=30_000
        )
        run_id = panel.get_attribute("data-run-id")
        answer = gateway.post(f"/api/runs/{run_id}/cancel", headers=RESEARCHER)
        assert answer.status_code == 202, answer.text
        expect(panel).to_have_attribute("data-status", "cancelling")
        expect(panel.locator(".run-status")).to_have_text(stopping)
        ui.shot(page, f"create-cancelling-{locale[:2]}")
        expect(panel).to_have_attribute("data-status", "cancelled", timeout=15_000)
        expect(panel.locator(".run-status")).to_have_text(stopped)
    finally:
        simulator.post("/sim/faults", json={"node_delay_seconds": None})
