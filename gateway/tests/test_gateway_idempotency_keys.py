from __future__ import annotations

import pytest
from kiln_gateway.errors import GatewayError
from kiln_gateway.idempotency import IdempotencyStore, body_hash


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
