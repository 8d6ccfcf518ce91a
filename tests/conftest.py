"""Integration fixtures: the whole system as real processes on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kiln_devstack.stack import Stack, StackConfig
from playwright.sync_api import Browser, sync_playwright
from support.ui_browser import CHROMIUM_ARGS, Ui, chromium_or_skip, ui_session


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("kiln-var")
    with Stack(StackConfig(var_dir=var_dir)) as running:
        yield running


@pytest.fixture
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
        yield client


@pytest.fixture
def simulator(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.urls["comfyui-sim"], timeout=10) as client:
        yield client


@pytest.fixture
def storage_root(stack: Stack) -> Path:
    return stack.storage_root


# -- browser tests (tests/test_ui_*.py): Debian's Chromium, headless --------------------------
# One launch per module, not per session: while Playwright's sync API is alive its event loop
# counts as running, and any later test calling asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def ui(browser: Browser, stack: Stack, request: pytest.FixtureRequest) -> Iterator[Ui]:
    yield from ui_session(browser, stack.gateway_url, request.node.name)
