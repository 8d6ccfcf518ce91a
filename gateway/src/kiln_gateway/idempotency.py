"""``Idempotency-Key`` for POST /api/runs, kept in a NATS KV bucket (TTL 24 h) so a retry that
lands on another gateway replica still finds the first attempt.

The first request claims the key atomically (KV ``create``) with the body's hash and the run
id it minted; it then creates the run and records the answer. A repeat with the same body gets
that answer (waiting briefly while the first is still in flight); a repeat with another body is
a 409. If creating the run fails, the claim is marked abandoned but keeps its run id: a retry
takes it over and resumes the SAME run, so a failure half-way (the run folder exists, the
answer was lost) can never leave a second run behind, nor the first one waiting forever.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from typing import Any

from kiln_contracts.records import RunRequest
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
    run_id: str
    # The request as first validated (device, session, safety level included): a resumed
    # attempt replays it exactly, whichever replica or cookie the retry arrives with.
    request: RunRequest | None = None
    accepted: RunAccepted | None = None  # None while the first request is still in flight
    abandoned: bool = False  # the attempt failed; the next request with this key resumes it


class Claim(BaseModel):
    """What a request holding the key must do: create (or resume) ``run_id``, or answer with
    ``accepted`` (an earlier request's answer)."""

    run_id: str
    request: RunRequest | None = None
    accepted: RunAccepted | None = None


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

    async def claim(
        self, storage_key: str, hashed: str, new_run_id: str, request: RunRequest
    ) -> Claim:
        entry = _Entry(body_hash=hashed, run_id=new_run_id, request=request)
        try:
            await self.kv.create(storage_key, entry.model_dump_json().encode())
        except KeyWrongLastSequenceError:
            return await self._earlier_claim(storage_key, hashed)
        return Claim(run_id=new_run_id, request=request)

    async def _earlier_claim(self, storage_key: str, hashed: str) -> Claim:
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.02
        while True:
            try:
                found = await self.kv.get(storage_key)
            except KeyNotFoundError:
                raise GatewayError(
                    GatewayErrorCode.IDEMPOTENCY_IN_PROGRESS,
                    "an earlier request with this Idempotency-Key expired meanwhile; retry it",
                    409,
                ) from None
            entry = _Entry.model_validate_json(found.value or b"")
            if entry.body_hash != hashed:
                raise GatewayError(
                    GatewayErrorCode.IDEMPOTENCY_KEY_REUSED,
                    "this Idempotency-Key was used with a different body",
                    409,
                )
            if entry.accepted is not None:
                return Claim(run_id=entry.run_id, accepted=entry.accepted)
            if entry.abandoned:
                taken = entry.model_copy(update={"abandoned": False})
                try:
                    # Compare-and-set: of two concurrent retries only one resumes the run.
                    await self.kv.update(
                        storage_key, taken.model_dump_json().encode(), found.revision
                    )
                except KeyWrongLastSequenceError:
                    continue
                return Claim(run_id=entry.run_id, request=entry.request)
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
        entry = _Entry(body_hash=hashed, run_id=accepted.run_id, accepted=accepted)
        await self.kv.put(storage_key, entry.model_dump_json().encode())

    async def abandon(
        self, storage_key: str, hashed: str, run_id: str, request: RunRequest
    ) -> None:
        entry = _Entry(body_hash=hashed, run_id=run_id, request=request, abandoned=True)
        await self.kv.put(storage_key, entry.model_dump_json().encode())
