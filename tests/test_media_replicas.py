"""Two media-service processes on one storage root: each serves every run, and writes to one
run from both at once never lose an entity or reuse a sequence number."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx
import pytest
from kiln_contracts.ids import new_run_id
from kiln_contracts.layout import run_relpath
from kiln_contracts.subjects import RunEventName
from kiln_devstack.stack import Stack
from support.kiln_polling import eventually
from support.media_helpers import (
    create_run,
    generated_event,
    media,
    media_log_lines,
    media_replica,
    png_bytes,
    publish,
    put_on_simulator,
    started_event,
)

pytestmark = pytest.mark.integration
__all__ = ["media"]


@pytest.fixture(scope="module")
def replica(stack: Stack) -> Iterator[httpx.Client]:
    with media_replica(stack, "media-2") as client:
        yield client


def test_both_report_one_storage_root(media: httpx.Client, replica: httpx.Client) -> None:
    first, second = media.get("/system").json(), replica.get("/system").json()
    assert first["instance_id"] != second["instance_id"]
    assert first["storage_id"] == second["storage_id"]


def test_each_replica_serves_every_run(media: httpx.Client, replica: httpx.Client) -> None:
    made_by = {create_run(media, input_text="from one"): media}
    made_by[create_run(replica, input_text="from two")] = replica
    for run_id in made_by:
        records = [client.get(f"/runs/{run_id}") for client in (media, replica)]
        assert [r.status_code for r in records] == [200, 200]
        assert records[0].json() == records[1].json()
        files = [client.get(f"/runs/{run_id}/files/01_input.txt") for client in (media, replica)]
        assert files[0].content == files[1].content
        # Listings too: the other replica's index picks the run up from the folders.
        for client in (media, replica):
            eventually(partial(_listed, client, run_id), 20, f"run {run_id} listed")


def _listed(client: httpx.Client, run_id: str) -> bool:
    return run_id in {x["run_id"] for x in client.get("/runs").json()["items"]}


def test_one_run_id_is_created_once_across_replicas(
    media: httpx.Client, replica: httpx.Client
) -> None:
    """Eight creates of one id race on both replicas, with two different requests: one request
    wins; its repeats get the run (creation is idempotent), the other request gets 409."""
    run_id = new_run_id()

    def create(job: tuple[httpx.Client, str]) -> tuple[str, int]:
        client, text = job
        body = {"run_id": run_id, "request": {"workflow": "noise", "input_text": text}}
        return text, client.post("/runs", json=body).status_code

    jobs = [(client, text) for text in ("a", "b") for client in (media, replica, media, replica)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(create, jobs))
    winner = media.get(f"/runs/{run_id}").json()["request"]["input_text"]
    assert sorted(status for text, status in answers if text == winner) == [201] * 4
    assert sorted(status for text, status in answers if text != winner) == [409] * 4
    assert replica.get(f"/runs/{run_id}/files/01_input.txt").content == winner.encode()


def test_concurrent_writes_to_one_run_from_both_lose_nothing(
    stack: Stack, media: httpx.Client, replica: httpx.Client
) -> None:
    run_id = create_run(media)
    outputs = [
        put_on_simulator(stack, run_id, f"9_{n:05d}_.png", png_bytes(20 + n, 20)) for n in range(8)
    ]
    # The same events, delivered several times over: the shared durable consumer hands them to
    # whichever replica pulls first, so both apply them to one run at the same time.
    for _ in range(3):
        publish(stack, started_event(stack, run_id), RunEventName.STARTED, redelivery=True)
    for _ in range(4):
        publish(
            stack, generated_event(stack, run_id, *outputs), RunEventName.GENERATED, redelivery=True
        )

    def completed() -> dict[str, Any] | None:
        record: dict[str, Any] = media.get(f"/runs/{run_id}").json()
        return record if record["status"] == "completed" else None

    record = eventually(completed, 40, "the run to complete")
    # Let every delivery finish before counting (the logs say when each was handled).
    handled_by = eventually(
        lambda: (
            _deliveries_handled(stack, run_id)
            if sum(_deliveries_handled(stack, run_id).values()) >= 7
            else None
        ),
        30,
        "all seven deliveries to be handled",
    )
    record = media.get(f"/runs/{run_id}").json()
    entities = record["entities"]
    seqs = [e["seq"] for e in entities]
    assert seqs == list(range(1, len(entities) + 1)), "a sequence number was reused or skipped"
    assert [e["type"] for e in entities].count("workflow") == 1
    images = [e for e in entities if e["type"] == "output_image"]
    assert sorted(e["meta"]["source"] for e in images) == sorted(
        f"{o.subfolder}/{o.filename}" for o in outputs
    )
    folder = stack.storage_root / run_relpath(run_id)
    on_disk = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
    assert on_disk == {e["filename"] for e in entities} | {"metadata.json"}

    # Both replicas now block different entities of the one run at the same time.
    def block(job: tuple[httpx.Client, str]) -> int:
        client, filename = job
        url = f"/runs/{run_id}/entities/{filename}/block"
        return client.put(url, json={"reason": f"review {filename}"}).status_code

    jobs = [(media if n % 2 else replica, e["filename"]) for n, e in enumerate(images)]
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(block, jobs)) == {200}
    record = replica.get(f"/runs/{run_id}").json()
    blocked = {e["filename"]: e["blocked"]["reason"] for e in record["entities"] if e["blocked"]}
    assert blocked == {e["filename"]: f"review {e['filename']}" for e in images}
    assert [e["event"] for e in record["events"]].count("blocked") == len(images)
    assert record["status"] == "completed"
    print(f"deliveries handled per replica: {handled_by}")


def _deliveries_handled(stack: Stack, run_id: str) -> dict[str, int]:
    """How many started/generated deliveries each replica finished (from its JSON log)."""
    counts = {}
    for name in ("media", "media-2"):
        lines = media_log_lines(stack, name)
        counts[name] = sum(
            line.get("run_id") == run_id
            and line["logger"] == "kiln.media.messaging"
            and line["message"].startswith(("handled started", "handled generated"))
            for line in lines
        )
    return counts
