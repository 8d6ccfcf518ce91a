"""The researcher page in a real browser: token, filters, a run's record and history,
blocking an entity, and an export watched to the end and downloaded."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kiln_gateway.auth import DEV_RESEARCHER_TOKEN
from playwright.sync_api import Page, expect
from support.kiln_polling import eventually, wait_final
from support.ui_browser import Ui

pytestmark = pytest.mark.integration


@pytest.fixture
def participant(gateway: httpx.Client, simulator: httpx.Client) -> Iterator[tuple[str, list[str]]]:
    """A device of its own with two completed runs and one failed run."""
    with httpx.Client(base_url=str(gateway.base_url), timeout=10) as device:
        device_id = device.get("/api/me").json()["device_id"]
        run_ids = []
        for text in ("a lighthouse", "a harbour at night", "a sailing ship"):
            if text == "a sailing ship":  # this one fails in ComfyUI (the fault fires once)
                fault = {"node_error": {"class_type": "SaveImage", "times": 1}}
                simulator.post("/sim/faults", json=fault).raise_for_status()
            body = {"workflow": "noise", "input_text": text, "params": {"width": 40, "height": 40}}
            response = device.post("/api/runs", json=body)
            assert response.status_code == 202, response.text
            run_ids.append(response.json()["run_id"])
            wait_final(device, run_ids[-1])
        yield device_id, run_ids


def sign_in(page: Page) -> None:
    page.goto("/#/research")
    page.get_by_label("Researcher token").fill(DEV_RESEARCHER_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#filters")).to_be_visible()


def filter_by_device(page: Page, device_id: str, status: str | None = None) -> None:
    page.get_by_label("Device id").fill(device_id)
    if status:
        page.locator("#filters select[name=status]").select_option(status)
    page.get_by_role("button", name="Show runs").click()


def table_ids(page: Page) -> list[str]:
    return page.locator("#runs-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.runId)"
    )


def test_ui_research_wrong_token_is_refused(ui: Ui) -> None:
    page, _ = ui.open("/#/research")
    page.get_by_label("Researcher token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    expect(page.locator("#filters")).to_have_count(0)
    ui.shot(page)


def test_ui_research_filters_inspect_and_block(
    ui: Ui, participant: tuple[str, list[str]], gateway: httpx.Client
) -> None:
    device_id, (lighthouse, harbour, ship) = participant
    page, _ = ui.open("/")
    sign_in(page)
    filter_by_device(page, device_id)
    expect(page.locator("#runs-table tbody tr")).to_have_count(3)
    assert table_ids(page) == [ship, harbour, lighthouse]

    # Dates are whole local days: "to yesterday" excludes today's runs, "from today" keeps them.
    today = page.evaluate("() => new Date().toLocaleDateString('sv')")  # YYYY-MM-DD, local
    yesterday = page.evaluate(
        "() => { const d = new Date(); d.setDate(d.getDate() - 1); return d.toLocaleDateString('sv'); }"
    )
    page.get_by_label("To (date)").fill(yesterday)
    page.get_by_role("button", name="Show runs").click()
    expect(page.get_by_text("0 runs shown")).to_be_visible()
    page.get_by_label("To (date)").fill("")
    page.get_by_label("From (date)").fill(today)
    filter_by_device(page, device_id, "failed")
    expect(page.locator("#runs-table tbody tr")).to_have_count(1)
    assert table_ids(page) == [ship]
    ui.shot(page, "research_runs")

    # One run's full record and history.
    filter_by_device(page, device_id, "completed")
    expect(page.locator("#runs-table tbody tr")).to_have_count(2)
    page.locator(f"#runs-table tr[data-run-id='{harbour}']").get_by_role("link").click()
    record = page.locator("#research-run")
    expect(record).to_contain_text(harbour)
    expect(record).to_contain_text("a harbour at night")
    history = record.locator("table.history tbody tr")
    expect(history).to_have_count(4)
    assert history.locator("td:nth-child(2)").all_inner_texts() == [
        "created",
        "started",
        "generated",
        "stored",
    ]
    expect(record.locator("img.media")).to_have_attribute("data-state", "loaded")

    # Block the output with a reason.
    row = record.locator("tr[data-filename='03_output_image.png']")
    row.get_by_role("button", name="Block").click()
    row.get_by_label("Reason for blocking").fill("shows a real person's face")
    row.get_by_role("button", name="Block this file").click()
    expect(record.locator("tr[data-filename='03_output_image.png']")).to_contain_text(
        "Blocked: shows a real person's face"
    )
    ui.shot(page, "research_record")
    stored = gateway.get(
        f"/api/runs/{harbour}", headers={"authorization": f"Bearer {DEV_RESEARCHER_TOKEN}"}
    ).json()
    entity = next(e for e in stored["entities"] if e["filename"] == "03_output_image.png")
    assert entity["blocked"]["reason"] == "shows a real person's face"

    # From now on the file is withheld (451), kept for research.
    blocked = gateway.get(
        f"/api/runs/{harbour}/files/03_output_image.png",
        headers={"authorization": f"Bearer {DEV_RESEARCHER_TOKEN}"},
    )
    assert blocked.status_code == 451


def test_ui_research_export_watched_and_downloaded(
    ui: Ui, participant: tuple[str, list[str]], tmp_path: Path
) -> None:
    device_id, run_ids = participant
    page, _ = ui.open("/")
    sign_in(page)
    filter_by_device(page, device_id, "completed")
    expect(page.locator("#runs-table tbody tr")).to_have_count(2)

    page.get_by_role("button", name="Export the runs this filter selects").click()
    state = page.locator(".export-state")
    expect(state).to_have_attribute("data-state", "completed", timeout=60_000)
    expect(state).to_contain_text("2 of 2 runs")
    link = page.locator("#export-download")
    expect(link).to_be_visible()
    ui.shot(page, "research_export")

    with page.expect_download() as download_info:
        link.click()
    archive = tmp_path / "export.zip"
    download_info.value.save_as(archive)
    assert archive.stat().st_size > 0
    with zipfile.ZipFile(archive) as bag:
        assert bag.testzip() is None
        names = bag.namelist()
    assert any(n.endswith("bagit.txt") for n in names), names
    # Exactly the filtered runs: the two completed ones, not the failed one.
    for run_id in run_ids[:2]:
        assert any(run_id in n for n in names), run_id
    assert not any(run_ids[2] in n for n in names)


def test_ui_research_history_shows_a_resubmission_after_a_comfyui_restart(
    ui: Ui, gateway: httpx.Client, simulator: httpx.Client
) -> None:
    with httpx.Client(base_url=str(gateway.base_url), timeout=10) as device:
        device_id = device.get("/api/me").json()["device_id"]
        simulator.post("/sim/faults", json={"node_delay_seconds": 0.7}).raise_for_status()
        try:
            body = {
                "workflow": "noise",
                "input_text": "a kite",
                "params": {"width": 40, "height": 40},
            }
            run_id = device.post("/api/runs", json=body).json()["run_id"]
            eventually(
                lambda: simulator.get("/sim/state").json()["running"] == run_id, 15, "run on sim"
            )
            simulator.post("/sim/restart", json={"downtime_seconds": 1.0}).raise_for_status()
            assert wait_final(device, run_id, timeout=60)["status"] == "completed"
        finally:
            simulator.post("/sim/faults", json={"node_delay_seconds": None})
    page, _ = ui.open("/")
    sign_in(page)
    filter_by_device(page, device_id)
    page.locator(f"#runs-table tr[data-run-id='{run_id}']").get_by_role("link").click()
    history = page.locator("#research-run table.history tbody tr")
    expect(history).to_have_count(5)
    assert history.locator("td:nth-child(2)").all_inner_texts() == [
        "created",
        "started",
        "resubmitted",
        "generated",
        "stored",
    ]
    resubmitted = history.nth(2)
    expect(resubmitted).to_contain_text('"reason":"backend_lost"')
    expect(resubmitted).to_contain_text('"backend":"comfyui-0"')
    ui.shot(page, "research-resubmitted")
