"""Quality of the web UI in a real browser: tablet and phone layouts, keyboard use, contrast,
German and English, and not one request that leaves the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kiln_gateway.auth import DEV_RESEARCHER_TOKEN
from playwright.sync_api import Page, expect
from support.ui_browser import PHONE, TABLET, Ui, origin

pytestmark = pytest.mark.integration

# WCAG 2.1 AA: 4.5:1 for text, 3:1 for large text. Finds every visible text node whose colour
# against its effective background (the nearest opaque ancestor background) falls short.
LOW_CONTRAST_JS = """
() => {
  const parse = (c) => {
    const p = c.match(/rgba?\\(([^)]+)\\)/)[1].split(',').map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const lum = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.a > 0.5) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const low = [];
  let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || el.closest('[hidden], .visually-hidden, noscript, .skip')) continue;
    const rect = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!rect.width || !rect.height || style.visibility === 'hidden') continue;
    const l1 = lum(parse(style.color)), l2 = lum(background(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (parseInt(style.fontWeight, 10) >= 700 && size >= 18.66);
    checked += 1;
    if (ratio < (large ? 3 : 4.5)) low.push([node.textContent.trim().slice(0, 40), ratio.toFixed(2)]);
  }
  return { checked, low };
}
"""


def sign_in(page: Page) -> None:
    page.goto("/#/research")
    page.get_by_label("Researcher token").fill(DEV_RESEARCHER_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#runs-table tbody tr").first).to_be_visible()


def generate_small(page: Page, prompt: str) -> None:
    page.get_by_label("Describe it in your own words").fill(prompt)
    page.get_by_text("More settings").click()
    page.locator("input[name=width]").fill("48")
    page.locator("input[name=height]").fill("48")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#result img.media")).to_have_attribute("data-state", "loaded")


def assert_fits(page: Page) -> None:
    width = page.evaluate("() => window.innerWidth")
    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page scrolls sideways: {scroll_width} > {width}"
    for link in page.locator("#nav a").all():
        box = link.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= width
        assert box["height"] >= 44, "touch targets need 44 px"


@pytest.mark.parametrize("viewport", [PHONE, TABLET], ids=["phone", "tablet"])
def test_ui_fits_phone_and_tablet(ui: Ui, viewport: dict[str, int]) -> None:
    name = "phone" if viewport is PHONE else "tablet"
    page, _ = ui.open("/", viewport=viewport)
    assert_fits(page)
    generate_small(page, "a snail on a leaf")
    assert_fits(page)
    image = page.locator("#result img.media").bounding_box()
    assert image is not None
    assert image["width"] <= viewport["width"]
    ui.shot(page, f"create_{name}")
    page.goto("/#/mine")
    expect(page.locator("#gallery li.card").first).to_be_visible()
    assert_fits(page)
    ui.shot(page, f"mine_{name}")
    sign_in(page)
    assert_fits(page)  # the runs table scrolls inside its own box, not the page


def test_ui_keyboard_only_generate(ui: Ui) -> None:
    page, _ = ui.open("/")

    def tab_to(selector: str, limit: int = 25) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"() => document.activeElement.matches({selector!r})"):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("#skip-link")
    tab_to("input[name=workflow]")
    assert page.evaluate("() => document.activeElement.value") == "noise"
    tab_to("textarea[name=prompt]")
    page.keyboard.type("a kite made with the keyboard")
    tab_to("#generate")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused button shows no focus ring"
    ui.shot(page, full_page=False)
    page.keyboard.press("Enter")
    expect(page.locator("#result img.media")).to_have_attribute("data-state", "loaded")
    # The result's links are reachable by keyboard too.
    tab_to("#result a[download]")


@pytest.fixture
def failing_noise(simulator: httpx.Client) -> Iterator[None]:
    """The next noise run fails inside ComfyUI (an execution_error), so the page shows a failure."""
    fault = {"class_type": "ImageAddNoise", "message": "Simulated node failure", "times": 1}
    assert simulator.post("/sim/faults", json={"node_error": fault}).status_code == 200
    try:
        yield
    finally:
        simulator.post("/sim/faults", json={"node_error": None})


def test_ui_german_and_english(ui: Ui, failing_noise: None) -> None:
    page, _ = ui.open("/", locale="de-DE")
    assert page.evaluate("() => document.documentElement.lang") == "de"
    expect(page.locator("#nav")).to_contain_text("Erstellen")
    expect(page.locator("label.choice", has_text="Rauschbild")).to_contain_text("Bild")
    page.get_by_label("Rauschbild").check()
    page.get_by_label("Beschreibe es mit deinen Worten").fill("eine Katze mit Hut")
    page.get_by_role("button", name="Erzeugen").click()
    failure = page.locator("#result .failure")
    expect(failure).to_contain_text("Das hat nicht geklappt", timeout=30_000)
    expect(failure).to_contain_text("Die Maschine hatte beim Erzeugen ein Problem")
    ui.shot(page, "create_failed_de")

    page.get_by_role("button", name="EN", exact=True).click()
    expect(page.locator("#nav")).to_contain_text("Create")
    assert page.evaluate("() => document.documentElement.lang") == "en"
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    expect(page.get_by_role("button", name="Generate")).to_be_visible()  # the choice is kept
    expect(page.get_by_role("button", name="EN", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )

    english, _ = ui.open("/", locale="en-GB")
    expect(english.locator("#nav")).to_contain_text("Mine")


def test_ui_text_contrast(ui: Ui, failing_noise: None) -> None:
    page, _ = ui.open("/")
    page.get_by_label("Noise picture").check()
    page.get_by_label("Describe it in your own words").fill("a cat in a hat")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#result .failure")).to_be_visible(timeout=30_000)
    pages: dict[str, Any] = {"create (failed run)": page.evaluate(LOW_CONTRAST_JS)}
    page.goto("/#/mine")
    expect(page.locator("#gallery li.card").first).to_be_visible()
    pages["mine"] = page.evaluate(LOW_CONTRAST_JS)
    sign_in(page)
    pages["research"] = page.evaluate(LOW_CONTRAST_JS)
    for name, result in pages.items():
        assert result["checked"] > 10, f"{name}: too little text checked: {result}"
        assert not result["low"], f"{name}: text below WCAG AA contrast: {result['low']}"
    ui.shot(page)


def test_ui_no_third_party_requests(ui: Ui) -> None:
    """Every request any page makes goes to the gateway (the CSP says so to the browser too)."""
    page, watch = ui.open("/")
    gateway = origin(ui.base_url)
    generate_small(page, "a tour of every page")
    page.get_by_role("link", name="Open in gallery").click()
    expect(page.locator("#run-detail img.media")).to_have_attribute("data-state", "loaded")
    page.goto("/#/mine")
    expect(page.locator("#gallery li.card").first).to_be_visible()
    page.goto("/#/ours")
    expect(page.get_by_label("Workshop code")).to_be_visible()
    sign_in(page)
    page.locator("#runs-table tbody tr").first.get_by_role("link").click()
    expect(page.locator("#research-run table.history")).to_be_visible()
    page.get_by_role("button", name="DE", exact=True).click()
    expect(page.locator("#nav")).to_contain_text("Forschung")

    assert len(watch.requests) > 10
    foreign = [
        url
        for url in watch.requests
        if origin(url) != gateway and not url.startswith(("blob:" + gateway, "data:"))
    ]
    assert not foreign, f"requests that left the gateway: {foreign}"
    csp = page.request.get("/").headers["content-security-policy"]
    assert "default-src 'self'" in csp
    ui.shot(page)
