from __future__ import annotations

import os

import pytest


@pytest.fixture
def chaos_runs() -> int:
    """200 in `make chaos`; a short form in `make test` (KILN_CHAOS_RUNS overrides)."""
    return int(os.environ.get("KILN_CHAOS_RUNS", "40"))
