"""Browser tests' helpers: Debian's Chromium driven by Playwright, a watch on every request the
page makes, and screenshots into test-output/screenshots/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    expect,
)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 820, "height": 1180}
DESKTOP = {"width": 1280, "height": 860}
# Runs go through the whole real stack on 2 shared cores: wait up to 20 s for the page to catch up.
expect.set_options(timeout=20_000)


def chromium_or_skip() -> str:
    """Debian's Chromium (``make install`` installs it as root); never a downloaded browser."""
    configured = os.environ.get("KILN_CHROMIUM")
    candidates = [configured] if configured else ["/usr/bin/chromium", shutil.which("chromium")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip(
        f"no Chromium at {' or '.join(c for c in candidates if c)}: Debian's chromium is not "
        "installed (make install installs it when run as root)"
    )


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Watch:
    """Everything one page asked for and everything that went wrong in it."""

    requests: list[str] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("console", self._on_console)

    def _on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _on_response(self, response: Response) -> None:
        self.responses.append(response)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def responses_to(self, path: str) -> list[Response]:
        return [r for r in self.responses if urlsplit(r.url).path == path]


@dataclass
class Ui:
    """Opens fresh browser contexts (a fresh profile each: no cookies, no storage) on the
    gateway and closes them all at the end of the test."""

    browser: Browser
    base_url: str
    test_name: str
    contexts: list[BrowserContext] = field(default_factory=list)
    watches: list[Watch] = field(default_factory=list)

    def open(
        self,
        path: str = "/",
        *,
        locale: str = "en-US",
        viewport: dict[str, int] | None = None,
    ) -> tuple[Page, Watch]:
        context = self.browser.new_context(
            base_url=self.base_url,
            locale=locale,
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            accept_downloads=True,
        )
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        page = context.new_page()
        watch = Watch()
        watch.attach(page)
        self.watches.append(watch)
        page.goto(path)
        page.wait_for_selector("body[data-ready='true']")
        return page, watch

    def shot(self, page: Page, name: str | None = None, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name or self.test_name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def ui_session(browser: Browser, base_url: str, test_name: str) -> Iterator[Ui]:
    ui = Ui(browser, base_url, test_name)
    try:
        yield ui
    finally:
        ui.close()
    # An uncaught script error is a bug even when the page still looks right.
    errors = [e for w in ui.watches for e in w.page_errors]
    assert not errors, f"script errors in the page: {errors}"
