from __future__ import annotations

import pytest
from kiln_gateway.errors import GatewayError
from kiln_gateway.idempotency import IdempotencyStore, body_hash
from kiln_gateway.limits import DeviceRateLimiter


def test_a_device_is_limited_per_sliding_minute() -> None:
    limiter = DeviceRateLimiter(per_minute=2)
    limiter.check("a", now=0)
    limiter.check("a", now=10)
    with pytest.raises(GatewayError) as refused:
        limiter.check("a", now=20)
    assert refused.value.status_code == 429
    assert refused.value.headers == {"Retry-After": "40"}
    limiter.check("b", now=20)  # another device is not affected
    limiter.check("a", now=60)  # the first hit left the window


def test_idle_devices_are_forgotten() -> None:
    limiter = DeviceRateLimiter(per_minute=5, max_devices=2)
    for device in ("a", "b", "c"):
        limiter.check(device, now=0)
    limiter.check("d", now=120)
    assert set(limiter._hits) == {"d"}


def test_the_body_hash_ignores_key_order_only() -> None:
    assert body_hash({"a": 1, "b": [1, 2]}) == body_hash({"b": [1, 2], "a": 1})
    assert body_hash({"a": 1}) != body_hash({"a": 2})


def test_idempotency_keys_are_scoped_hashed_and_checked() -> None:
    key = IdempotencyStore.storage_key("runs", "retry-1")
    assert key.startswith("k.")
    assert key != IdempotencyStore.storage_key("other", "retry-1")
    for bad in ("", "x" * 256, "naïve", "with space"):
        with pytest.raises(GatewayError) as refused:
            IdempotencyStore.storage_key("runs", bad)
        assert refused.value.status_code == 400
