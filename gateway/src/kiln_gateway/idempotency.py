"""``Idempotency-Key`` for POST /api/runs, kept in a NATS KV bucket (TTL 24 h) so a retry that
lands on another gateway replica still finds the first attempt.

The first request claims the key atomically (KV ``create``) with the body's hash; it then
creates the run and records the answer. A repeat with the same body gets that answer (waiting
briefly while the first is still in flight); a repeat with another body is a 409. If creating
the run fails, the claim is released so the client may retry with the same key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel

from kiln_gateway.errors import GatewayError, GatewayErrorCode
from kiln_gateway.models import RunAccepted

BUCKET = "kiln_idempotency"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, as HTTP headers carry it


class _Entry(BaseModel):
    body_hash: str
    accepted: RunAccepted | None = None  # None while the first request is still in flight


def body_hash(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyStore:
    def __init__(self, kv: KeyValue, wait_seconds: float = 10) -> None:
        self.kv = kv
        self.wait_seconds = wait_seconds

    @classmethod
    async def open(cls, js: JetStreamContext, ttl_hours: float) -> IdempotencyStore:
        try:
            kv = await js.key_value(BUCKET)
        except BucketNotFoundError:
            kv = await js.create_key_value(
                KeyValueConfig(
                    bucket=BUCKET, history=1, ttl=ttl_hours * 3600, storage=StorageType.FILE
                )
            )
        return cls(kv)

    @staticmethod
    def storage_key(scope: str, key: str) -> str:
        if not _VALID_KEY.fullmatch(key):
            raise GatewayError(
                GatewayErrorCode.INVALID_IDEMPOTENCY_KEY,
                "Idempotency-Key must be 1 to 255 printable ASCII characters",
                400,
            )
        # KV keys allow a narrow alphabet: hash the client's key (and its scope) into it.
        return "k." + hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()

    async def claim(self, storage_key: str, hashed: str) -> RunAccepted | None:
        """None: this request owns the key and must create the run. Otherwise the answer the
        first request with this key and body gave."""
        try:
            await self.kv.create(storage_key, _Entry(body_hash=hashed).model_dump_json().encode())
        except KeyWrongLastSequenceError:
            return await self._earlier_answer(storage_key, hashed)
        return None

    async def _earlier_answer(self, storage_key: str, hashed: str) -> RunAccepted:
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.02
        while True:
            try:
                entry = _Entry.model_validate_json((await self.kv.get(storage_key)).value or b"")
            except KeyNotFoundError:
                # The first attempt failed and released the key: the client should retry.
                raise GatewayError(
                    GatewayErrorCode.IDEMPOTENCY_IN_PROGRESS,
                    "an earlier request with this Idempotency-Key failed; retry it",
                    409,
                ) from None
            if entry.body_hash != hashed:
                raise GatewayError(
                    GatewayErrorCode.IDEMPOTENCY_KEY_REUSED,
                    "this Idempotency-Key was used with a different body",
                    409,
                )
            if entry.accepted is not None:
                return entry.accepted
            if time.monotonic() >= deadline:
                raise GatewayError(
                    GatewayErrorCode.IDEMPOTENCY_IN_PROGRESS,
                    "a request with this Idempotency-Key is still in progress; retry later",
                    409,
                    headers={"Retry-After": "1"},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def complete(self, storage_key: str, hashed: str, accepted: RunAccepted) -> None:
        entry = _Entry(body_hash=hashed, accepted=accepted)
        await self.kv.put(storage_key, entry.model_dump_json().encode())

    async def release(self, storage_key: str) -> None:
        await self.kv.delete(storage_key)
