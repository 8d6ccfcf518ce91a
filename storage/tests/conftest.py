from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from kiln_contracts.ids import new_run_id
from kiln_contracts.records import RunRequest
from kiln_storage.base import RunStorage
from kiln_storage.local import RunStore
from kiln_storage.s3 import S3RunStore
from kiln_storage.weed import WeedMini


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


@pytest.fixture(scope="session")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeedMini]:
    """A real S3 endpoint (SeaweedFS ``weed mini``), shared by the session."""
    with WeedMini(tmp_path_factory.mktemp("weed")) as server:
        yield server


# The S3 variant starts a real server (weed mini): integration tier, not `make unit`.
@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], RunStorage]]:
    """A factory of stores on one root: a local directory, or a fresh prefix on S3. Each call
    gives an independent store object, as another replica would have."""
    if request.param == "local":
        root = tmp_path / "storage"
        yield lambda: RunStore(root)
        return
    weed: WeedMini = request.getfixturevalue("weed")
    client = weed.client()
    bucket = "kiln-test"
    with suppress(ClientError):
        client.create_bucket(Bucket=bucket)
    prefix = f"root-{uuid.uuid4().hex[:8]}"
    yield lambda: S3RunStore(client, bucket, prefix, spool=tmp_path / "spool")
