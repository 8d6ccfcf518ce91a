from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from kiln_pipeline.comfy import ComfyClient
from kiln_pipeline.pool import Backend, BackendPool, NoHealthyBackendError
from kiln_pipeline.watcher import BackendWatcher
from pipeline_fakes import FakeComfy

pytestmark = pytest.mark.anyio


@pytest.fixture
async def pool() -> AsyncIterator[tuple[BackendPool, list[FakeComfy]]]:
    comfies = [FakeComfy(), FakeComfy()]
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(comfies[0].handle)) as http0,
        httpx.AsyncClient(transport=httpx.MockTransport(comfies[1].handle)) as http1,
    ):
        backends = [
            Backend(
                ComfyClient(f"comfyui-{i}", f"http://c{i}", http), BackendWatcher("", ""), "k", 2
            )
            for i, http in enumerate((http0, http1))
        ]
        yield BackendPool(backends), comfies


def soon(seconds: float = 0.05) -> float:
    return time.monotonic() + seconds


async def test_runs_go_to_the_least_loaded_backend_up_to_the_bound(
    pool: tuple[BackendPool, list[FakeComfy]],
) -> None:
    backends, _ = pool
    chosen = [(await backends.acquire(soon())).name for _ in range(4)]
    assert sorted(chosen) == ["comfyui-0", "comfyui-0", "comfyui-1", "comfyui-1"]
    assert chosen[:2] == ["comfyui-0", "comfyui-1"]  # alternate while loads are equal
    with pytest.raises(NoHealthyBackendError, match="full"):
        await backends.acquire(soon())  # every backend at its bound: the caller waits


async def test_a_foreign_queue_counts_as_load(pool: tuple[BackendPool, list[FakeComfy]]) -> None:
    backends, comfies = pool
    comfies[0].queued.extend(["someone", "else"])
    await backends.check_all()
    assert backends.backends[0].queue_remaining == 2
    assert (await backends.acquire(soon())).name == "comfyui-1"


async def test_an_unanswering_backend_leaves_rotation_until_it_answers_again(
    pool: tuple[BackendPool, list[FakeComfy]],
) -> None:
    backends, comfies = pool
    comfies[0].down = True
    await backends.check_all()
    first = backends.backends[0]
    assert first.healthy is False
    assert "503" in (first.last_error or "")
    assert (await backends.acquire(soon())).name == "comfyui-1"
    comfies[0].down = False
    await backends.check_all()
    assert first.healthy is True
    assert (await backends.acquire(soon())).name == "comfyui-0"


async def test_avoided_backends_are_used_only_when_nothing_else_is_free(
    pool: tuple[BackendPool, list[FakeComfy]],
) -> None:
    backends, _ = pool
    avoid = frozenset({"comfyui-0"})
    assert (await backends.acquire(soon(), avoid)).name == "comfyui-1"
    assert (await backends.acquire(soon(), avoid)).name == "comfyui-1"
    assert (await backends.acquire(soon(), avoid)).name == "comfyui-0"


async def test_a_malformed_health_answer_does_not_end_the_health_checks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = 0
    malformed_answers = 2
    # Rounds run one after another: when this request arrives, the first good round is done.
    round_after_a_good_one = asyncio.Event()

    def comfy(request: httpx.Request) -> httpx.Response:
        nonlocal answers
        assert (request.method, request.url.path) == ("GET", "/prompt")
        answers += 1
        if answers == malformed_answers + 2:
            round_after_a_good_one.set()
        if answers <= malformed_answers:
            return httpx.Response(200, text="{not json")  # response.json() raises
        return httpx.Response(200, json={"exec_info": {"queue_remaining": 3}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(comfy)) as http:
        backend = Backend(
            ComfyClient("comfyui-0", "http://c0", http), BackendWatcher("", ""), "k", 2
        )
        backends = BackendPool([backend])
        with caplog.at_level(logging.ERROR, logger="kiln.pipeline.pool"):
            backends.start_health_checks(0.001)
            try:
                # A loop that died on the first malformed answer never gets here.
                await asyncio.wait_for(round_after_a_good_one.wait(), 5)
            finally:
                await backends.stop()
    assert backend.queue_remaining == 3  # the good answer was read after the bad ones
    failures = [r for r in caplog.records if "backend health check failed" in r.getMessage()]
    assert len(failures) == malformed_answers
    assert all(r.exc_info and isinstance(r.exc_info[1], ValueError) for r in failures)


async def test_health_checks_read_the_node_classes_and_placement_follows_them(
    pool: tuple[BackendPool, list[FakeComfy]],
) -> None:
    backends, comfies = pool
    backends.node_classes = frozenset({"SaveImage", "KSampler"})
    comfies[0].object_info = {"SaveImage": {"input": {"required": {}}}}
    comfies[1].object_info = {
        "SaveImage": {"input": {"required": {}}},
        "KSampler": {"input": {"required": {}}},
    }
    await backends.check_all()
    first, second = backends.backends
    assert set(first.nodes or {}) == {"SaveImage"}
    assert set(second.nodes or {}) == {"SaveImage", "KSampler"}

    def has_sampler(backend: Backend) -> bool:
        return "KSampler" in (backend.nodes or {})

    assert (await backends.acquire(soon(), can_run=has_sampler)).name == "comfyui-1"
    assert (await backends.acquire(soon(), can_run=has_sampler)).name == "comfyui-1"
    with pytest.raises(NoHealthyBackendError, match="comfyui-0: cannot run this graph"):
        await backends.acquire(soon(), can_run=has_sampler)

    # A backend whose node classes cannot be read keeps the last catalogue and says why.
    comfies[0].object_info = None
    await backends.check_all()
    assert set(first.nodes or {}) == {"SaveImage"}
    assert first.healthy is True
    assert "404" in (first.nodes_error or "")
