"""Workshop sessions, kept in a NATS KV bucket so every gateway replica sees the same ones.

A researcher opens a session (title, safety level) and gets a short code to write on the board;
participants join with the code. Two keys per session: ``id.{session_id}`` holds the session,
``code.{CODE}`` points to it (created with ``create`` so two sessions never share a code).
Each device that joins leaves ``member.{session_id}.{hash of its device id}``: the teacher's
board counts them without the bucket ever linking a device id to a session.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from datetime import datetime, timedelta

from kiln_contracts.errors import ErrorCode
from kiln_contracts.records import SafetyLevel, utc_now
from kiln_contracts.text import Utf8Str
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType, StreamInfo
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field

from kiln_gateway.errors import GatewayError, GatewayErrorCode

logger = logging.getLogger("kiln.gateway.sessions")

BUCKET = "kiln_sessions"
# No 0/O, 1/I/L: codes are read aloud and copied from a whiteboard by children.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
MAX_SESSION_HOURS = 24 * 90


class CreateSessionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"title": "Year 5 art, Tuesday", "safety_level": "kids"}]},
    )

    title: Utf8Str = Field(min_length=1, max_length=200)
    safety_level: SafetyLevel = SafetyLevel.KIDS
    hours: float | None = Field(
        default=None, gt=0, le=MAX_SESSION_HOURS, description="Lifetime; the default is config."
    )


class JoinSessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"code": "K7QX2M"}]})

    code: Utf8Str = Field(min_length=1, max_length=32, description="The short code of the session.")


class WorkshopSession(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": "5b8f0a8e-1f0e-4c55-9d1a-3c2b1a0f9e8d",
                    "code": "K7QX2M",
                    "title": "Year 5 art, Tuesday",
                    "safety_level": "kids",
                    "created_at": "2026-11-21T09:00:00Z",
                    "expires_at": "2026-11-21T21:00:00Z",
                }
            ]
        }
    )

    session_id: str
    code: str
    title: str
    safety_level: SafetyLevel
    created_at: datetime
    expires_at: datetime

    @property
    def expired(self) -> bool:
        return utc_now() >= self.expires_at


def normalise_code(code: str) -> str:
    """Upper-case, keep only the code alphabet's characters (so "ab-c 12" works). Anything
    else (non-ASCII letters included) is dropped: it can never be part of a code, and NATS
    KV keys must stay ASCII."""
    return "".join(ch for ch in code.upper() if ch in CODE_ALPHABET)


class SessionStore:
    def __init__(self, kv: KeyValue, default_hours: float, js: JetStreamContext) -> None:
        self.kv = kv
        self.default_hours = default_hours
        self.js = js  # counts members with one stream-info request, no consumer

    @classmethod
    async def open(cls, js: JetStreamContext, default_hours: float) -> SessionStore:
        try:
            kv = await js.key_value(BUCKET)
        except BucketNotFoundError:
            kv = await js.create_key_value(
                KeyValueConfig(bucket=BUCKET, history=1, storage=StorageType.FILE)
            )
        return cls(kv, default_hours, js)

    async def create(self, body: CreateSessionRequest) -> WorkshopSession:
        now = utc_now()
        hours = body.hours or self.default_hours
        session_id = str(uuid.uuid4())
        for _ in range(10):
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            session = WorkshopSession(
                session_id=session_id,
                code=code,
                title=body.title,
                safety_level=body.safety_level,
                created_at=now,
                expires_at=now + timedelta(hours=hours),
            )
            try:
                await self.kv.create(f"code.{code}", session_id.encode())
            except KeyWrongLastSequenceError:
                existing = await self._by_code(code)
                if existing is not None and not existing.expired:
                    continue  # taken by a live session: draw another code
                await self.kv.put(f"code.{code}", session_id.encode())
            await self.kv.put(f"id.{session_id}", session.model_dump_json().encode())
            logger.info("workshop session %s opened with code %s", session_id, code)
            return session
        raise GatewayError(ErrorCode.INTERNAL, "could not find a free session code; try again", 503)

    async def get(self, session_id: str) -> WorkshopSession | None:
        """The live session with this id, or None if it never existed or has ended."""
        session = await self.find(session_id)
        return None if session is None or session.expired else session

    async def find(self, session_id: str) -> WorkshopSession | None:
        """The session with this id, open or ended (for the researcher's board)."""
        try:
            entry = await self.kv.get(f"id.{session_id}")
        except KeyNotFoundError:
            return None
        return WorkshopSession.model_validate_json(entry.value or b"")

    async def close(self, session_id: str) -> WorkshopSession | None:
        """End the session now: its code stops working and its devices leave it (their cookies
        name a session that ``get`` no longer returns). Closing an ended session changes nothing."""
        session = await self.find(session_id)
        if session is None or session.expired:
            return session
        closed = session.model_copy(update={"expires_at": utc_now()})
        await self.kv.put(f"id.{session_id}", closed.model_dump_json().encode())
        logger.info("workshop session %s closed", session_id)
        return closed

    async def record_member(self, session_id: str, device_id: str) -> None:
        member = hashlib.sha256(device_id.encode()).hexdigest()[:32]
        await self.kv.put(f"member.{session_id}.{member}", b"")

    async def member_count(self, session_id: str) -> int:
        """How many devices have joined the session."""
        info: StreamInfo = await self.js.stream_info(
            f"KV_{BUCKET}", subjects_filter=f"$KV.{BUCKET}.member.{session_id}.*"
        )
        return len(info.state.subjects or {})

    async def _by_code(self, code: str) -> WorkshopSession | None:
        try:
            entry = await self.kv.get(f"code.{code}")
        except KeyNotFoundError:
            return None
        return await self.get((entry.value or b"").decode())

    async def join(self, code: str) -> WorkshopSession:
        normalised = normalise_code(code)
        session = await self._by_code(normalised) if len(normalised) == CODE_LENGTH else None
        if session is None:
            raise GatewayError(
                GatewayErrorCode.SESSION_NOT_FOUND,
                f"no open workshop session has the code {code!r}"[:200],
                404,
            )
        return session
