"""Fixtures for the simulator tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sim_helpers import SimServer, running_simulator


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimServer]:
    """A simulator on a free loopback port, writing under ``tmp_path``."""
    with running_simulator(tmp_path) as server:
        yield server


HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that takes ``sim`` starts a real server (uvicorn on a loopback port), so it is an
    integration test, not part of ``make unit``; the simulator's pure tests stay unit tests."""
    for item in items:
        if item.path.is_relative_to(HERE) and "sim" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
