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
