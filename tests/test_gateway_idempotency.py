"""Idempotency-Key: the same key and body return the same run (no second run), even through
another gateway replica and even when both requests arrive at once; another body is a 409."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from kiln_devstack.stack import Stack
from support.kiln_gateway_helpers import RUN_BODY, gateway_replica

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def other_replica(stack: Stack) -> Iterator[str]:
    with gateway_replica(stack, "gateway-idem") as url:
        yield url


def run_folders(storage_root: Path) -> set[str]:
    return {p.name for p in storage_root.glob("runs/*/*")}


def post(url: str, key: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{url}/api/runs", json=body, headers={"Idempotency-Key": key}, timeout=15)


def test_a_repeat_returns_the_same_run_on_any_replica(
    stack: Stack, other_replica: str, storage_root: Path
) -> None:
    key = str(uuid.uuid4())
    before = run_folders(storage_root)
    first = post(stack.gateway_url, key, RUN_BODY)
    assert first.status_code == 202, first.text
    again = post(stack.gateway_url, key, RUN_BODY)
    elsewhere = post(other_replica, key, RUN_BODY)
    assert again.status_code == elsewhere.status_code == 202
    assert again.json() == elsewhere.json() == first.json()
    assert run_folders(storage_root) - before == {first.json()["run_id"]}


def test_simultaneous_repeats_on_two_replicas_make_one_run(
    stack: Stack, other_replica: str, storage_root: Path
) -> None:
    key = str(uuid.uuid4())
    before = run_folders(storage_root)
    urls = [stack.gateway_url, other_replica] * 4
    with ThreadPoolExecutor(len(urls)) as pool:
        responses = list(pool.map(lambda url: post(url, key, RUN_BODY), urls))
    assert {r.status_code for r in responses} == {202}, [r.text for r in responses]
    assert len({r.json()["run_id"] for r in responses}) == 1
    assert len(run_folders(storage_root) - before) == 1


def test_the_same_key_with_another_body_is_a_409(stack: Stack, storage_root: Path) -> None:
    key = str(uuid.uuid4())
    assert post(stack.gateway_url, key, RUN_BODY).status_code == 202
    before = run_folders(storage_root)
    other = post(stack.gateway_url, key, {**RUN_BODY, "input_text": "a blue kite"})
    assert other.status_code == 409
    assert other.json()["error"] == "idempotency_key_reused"
    assert run_folders(storage_root) == before


def test_without_a_key_every_request_is_a_new_run(stack: Stack) -> None:
    ids = {
        httpx.post(f"{stack.gateway_url}/api/runs", json=RUN_BODY).json()["run_id"] for _ in "ab"
    }
    assert len(ids) == 2


def test_a_key_that_cannot_be_a_header_value_is_a_400(stack: Stack) -> None:
    response = post(stack.gateway_url, "x" * 300, RUN_BODY)
    assert response.status_code in (400, 422)
    assert response.json()["error"] in ("invalid_idempotency_key", "invalid_request")
