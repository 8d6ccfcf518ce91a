from __future__ import annotations

from pathlib import Path

import pytest
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunRequest
from kiln_storage.local import RunStore


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path / "storage")
    store.ensure_storage_id()
    return store


@pytest.fixture
def run_id(store: RunStore) -> str:
    run_id = new_run_id()
    store.create_run(run_id, RunRequest(workflow="noise", input_text="a red kite"))
    return run_id
