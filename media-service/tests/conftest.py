from __future__ import annotations

from pathlib import Path

import pytest
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunRequest
from kiln_media.service import MediaService
from kiln_storage.local import RunStore
from media_fakes import FakeSource, RecordingPublisher


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path / "storage")
    store.ensure_storage_id()
    return store


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def service(store: RunStore, source: FakeSource, publisher: RecordingPublisher) -> MediaService:
    return MediaService(store, source, publisher, fetch_attempts=3, fetch_backoff_seconds=0.001)


@pytest.fixture
def run_id(store: RunStore) -> str:
    run_id = new_run_id()
    store.create_run(run_id, RunRequest(workflow="noise", input_text="a red kite"))
    return run_id


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
