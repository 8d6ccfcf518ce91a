"""Polling helpers for integration tests: deadlines, never bare sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
FINAL = {"completed", "failed", "cancelled"}


def eventually(probe: Callable[[], T | None], timeout: float = 20, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    delay = 0.02
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(delay)
        delay = min(delay * 1.5, 0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


def wait_final(client: httpx.Client, run_id: str, timeout: float = 30) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        response = client.get(f"/api/runs/{run_id}")
        assert response.status_code == 200, response.text
        record: dict[str, Any] = response.json()
        return record if record["status"] in FINAL else None

    return eventually(probe, timeout, f"run {run_id} to finish")
