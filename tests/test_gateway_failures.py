"""Creating a run when a dependency is down: a 503 in the JSON error shape, and either nothing
exists or the run is recorded ``failed`` with a code. Never a run that waits forever.

These tests stop and restart media-service and NATS, so they run on a stack of their own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kiln_contracts.ids import run_date
from kiln_devstack.stack import Stack, StackConfig
from support.kiln_gateway_helpers import RUN_BODY
from support.kiln_polling import eventually, wait_final

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(StackConfig(var_dir=tmp_path_factory.mktemp("kiln-failures"))) as running:
        yield running


@pytest.fixture
def client(own_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=own_stack.gateway_url, timeout=30) as gateway:
        yield gateway


def folders(stack: Stack) -> set[Path]:
    return set(stack.storage_root.glob("runs/*/*"))


def works_again(client: httpx.Client) -> None:
    def completes() -> bool:
        response = client.post("/api/runs", json=RUN_BODY)
        if response.status_code != 202:
            return False
        return wait_final(client, response.json()["run_id"])["status"] == "completed"

    eventually(completes, timeout=60, what="the system to run again")


def test_media_down_is_a_503_and_nothing_exists(own_stack: Stack, client: httpx.Client) -> None:
    before = folders(own_stack)
    own_stack.stop_service("media")
    try:
        for headers in ({}, {"Idempotency-Key": str(uuid.uuid4())}):
            response = client.post("/api/runs", json=RUN_BODY, headers=headers)
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "upstream_unavailable"
            assert "media-service" in response.json()["detail"]
    finally:
        own_stack.start_service("media")
    assert folders(own_stack) == before
    works_again(client)


def test_nats_down_is_a_503_and_the_run_is_recorded_failed(
    own_stack: Stack, client: httpx.Client
) -> None:
    before = folders(own_stack)
    own_stack.stop_service("nats")
    try:
        response = client.post("/api/runs", json=RUN_BODY)
        assert response.status_code == 503, response.text
        error = response.json()
        assert error["error"] == "queue_unavailable"
        # With an idempotency key the key store (NATS KV) is down too: nothing is created.
        keyed = client.post("/api/runs", json=RUN_BODY, headers={"Idempotency-Key": "k-1"})
        assert keyed.status_code == 503, keyed.text
        assert keyed.json()["error"] == "queue_unavailable"
    finally:
        own_stack.start_nats()

    created = folders(own_stack) - before
    assert len(created) == 1, "exactly the unkeyed run exists"
    folder = created.pop()
    run_id = folder.name
    assert run_id in error["detail"]
    assert folder.parent.name == run_date(run_id).isoformat()
    record = json.loads((folder / "metadata.json").read_text())
    assert record["status"] == "failed"
    assert record["error"]["code"] == "queue_unavailable"
    assert record["error"]["stage"] == "gateway"
    # The API says the same as the disk.
    assert eventually(lambda: client.get(f"/api/runs/{run_id}").status_code == 200)
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "failed"
    works_again(client)
