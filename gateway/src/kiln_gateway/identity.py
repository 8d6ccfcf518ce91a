"""Participants are pseudonymous devices: the gateway issues a random device id in a signed
cookie, rotates it after a configured period, and records which workshop session the device
joined. Nothing personal is ever in it. Signed with HMAC so a browser cannot claim another
device's or session's runs; stateless so any gateway replica accepts any cookie."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass, replace

DEVICE_COOKIE = "kiln_device"
_NO_SESSION = "-"


@dataclass(frozen=True)
class Identity:
    device_id: str
    session_id: str | None
    issued_at: int
    # True when the cookie must be (re)sent: new device, rotation, or a joined session.
    changed: bool = False

    def with_session(self, session_id: str | None) -> Identity:
        return replace(self, session_id=session_id, changed=True)


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


class DeviceCookies:
    def __init__(self, secret: str, rotation_seconds: float) -> None:
        self._key = hashlib.sha256(b"kiln-device-cookie:" + secret.encode()).digest()
        self.rotation_seconds = rotation_seconds

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def encode(self, identity: Identity) -> str:
        payload = f"{identity.device_id}.{identity.session_id or _NO_SESSION}.{identity.issued_at}"
        return f"{payload}.{self._sign(payload)}"

    def new(self, session_id: str | None = None, now: float | None = None) -> Identity:
        issued = int(now if now is not None else time.time())
        return Identity(str(uuid.uuid4()), session_id, issued, changed=True)

    def resolve(self, cookie: str | None, now: float | None = None) -> Identity:
        """The identity a cookie proves, or a new one if it is missing, forged or expired.

        Rotation gives a new device id but keeps the workshop session, so a child keeps seeing
        the session's runs while old runs stop being linkable to the new id.
        """
        now = now if now is not None else time.time()
        parsed = self._verify(cookie) if cookie else None
        if parsed is None:
            return self.new(now=now)
        if now - parsed.issued_at > self.rotation_seconds:
            return self.new(parsed.session_id, now)
        return parsed

    def _verify(self, cookie: str) -> Identity | None:
        # A well-formed cookie is ASCII; anything else (a stray byte, a browser's mangling) is
        # "no cookie": compare_digest refuses non-ASCII str, and isdigit accepts "²".
        if not cookie.isascii():
            return None
        parts = cookie.split(".")
        if len(parts) != 4:
            return None
        device_id, session_id, issued, signature = parts
        if not hmac.compare_digest(self._sign(".".join(parts[:3])), signature):
            return None
        if not _is_uuid(device_id) or not issued.isdigit():
            return None
        if session_id != _NO_SESSION and not _is_uuid(session_id):
            return None
        return Identity(device_id, None if session_id == _NO_SESSION else session_id, int(issued))
