"""The admission limits with fakes for NATS: runs per device per minute (a KV bucket, shared by
every gateway replica) and the queue-depth ceiling (the pipeline consumer's pending counts)."""

from __future__ import annotations

import pytest
from gateway_fakes import FakeJetStream, FakeKeyValue
from kiln_gateway.errors import GatewayError
from kiln_gateway.limits import WINDOW_SECONDS, DeviceRateLimiter, QueueDepthGuard
from nats.js.errors import KeyWrongLastSequenceError

pytestmark = pytest.mark.anyio

WINDOW_START = 1_000 * WINDOW_SECONDS  # a time at the very start of a one-minute window


async def test_a_device_gets_its_runs_per_minute_then_429_with_retry_after() -> None:
    limiter = DeviceRateLimiter(FakeKeyValue(), per_minute=2)
    await limiter.check("device-1", now=WINDOW_START)
    await limiter.check("device-1", now=WINDOW_START + 1)
    with pytest.raises(GatewayError) as raised:
        await limiter.check("device-1", now=WINDOW_START + 20)
    assert (raised.value.code, raised.value.status_code) == ("rate_limited", 429)
    assert raised.value.headers == {"Retry-After": "40"}  # the window's remaining seconds


async def test_the_limit_is_per_device_and_per_window() -> None:
    limiter = DeviceRateLimiter(FakeKeyValue(), per_minute=1)
    await limiter.check("device-1", now=WINDOW_START)
    await limiter.check("device-2", now=WINDOW_START)  # another device has its own count
    with pytest.raises(GatewayError):
        await limiter.check("device-1", now=WINDOW_START + 59)
    await limiter.check("device-1", now=WINDOW_START + WINDOW_SECONDS)  # the next minute


async def test_the_count_is_shared_through_the_bucket_across_replicas() -> None:
    bucket = FakeKeyValue()
    replica_a = DeviceRateLimiter(bucket, per_minute=1)
    replica_b = DeviceRateLimiter(bucket, per_minute=1)
    await replica_a.check("device-1", now=WINDOW_START)
    with pytest.raises(GatewayError):
        await replica_b.check("device-1", now=WINDOW_START + 1)


async def test_a_lost_compare_and_set_race_is_retried_and_counted_once() -> None:
    class RacedOnce(FakeKeyValue):
        raced = False

        async def create(self, key: str, value: bytes) -> int:
            if not self.raced:
                self.raced = True
                await super().create(key, value)  # the other replica's request won
                raise KeyWrongLastSequenceError("wrong last sequence")
            return await super().create(key, value)

    bucket = RacedOnce()
    limiter = DeviceRateLimiter(bucket, per_minute=2)
    await limiter.check("device-1", now=WINDOW_START)
    [entry] = bucket.entries.values()
    assert entry.value == b"2"  # the other request's count and ours
    with pytest.raises(GatewayError):
        await limiter.check("device-1", now=WINDOW_START + 1)


async def test_an_unreachable_bucket_does_not_block_runs(caplog: pytest.LogCaptureFixture) -> None:
    limiter = DeviceRateLimiter(FakeKeyValue(error=TimeoutError("nats: timeout")), per_minute=1)
    await limiter.check("device-1", now=WINDOW_START)
    await limiter.check("device-1", now=WINDOW_START)
    assert "rate limit not checked" in caplog.text


async def test_the_queue_guard_refuses_at_the_limit_counting_unacknowledged_runs() -> None:
    js = FakeJetStream(pending=3, ack_pending=2)
    guard = QueueDepthGuard(js, "pipeline", limit=5, cache_seconds=0)
    with pytest.raises(GatewayError) as raised:
        await guard.check()
    assert (raised.value.code, raised.value.status_code) == ("queue_full", 429)
    assert raised.value.headers == {"Retry-After": "5"}
    js.ack_pending = 1
    await guard.check()  # 4 waiting: below the limit


async def test_the_queue_depth_is_read_once_per_burst() -> None:
    js = FakeJetStream(pending=1)
    guard = QueueDepthGuard(js, "pipeline", limit=5, cache_seconds=3600)
    for _ in range(5):
        await guard.check()
    assert js.reads == 1


async def test_an_unknown_queue_depth_does_not_block_runs(caplog: pytest.LogCaptureFixture) -> None:
    js = FakeJetStream(error=TimeoutError("consumer not found"))
    guard = QueueDepthGuard(js, "pipeline", limit=1, cache_seconds=0)
    await guard.check()
    assert "queue depth unknown" in caplog.text
