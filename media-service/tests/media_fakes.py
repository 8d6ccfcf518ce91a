"""Fakes behind media-service's ports, for unit tests."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import AsyncIterator

from kiln_contracts.events import GeneratedOutput, RunFailed, RunMessage, RunStored
from kiln_media.ports import OutputFetchError


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """A valid PNG built by hand so these tests need no image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n")
    out.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
    out.write(chunk(b"IDAT", zlib.compress(raw)))
    out.write(chunk(b"IEND", b""))
    return out.getvalue()


class FakeSource:
    """Serves bytes per filename; can fail a number of times first."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.failures: dict[str, list[OutputFetchError]] = {}
        self.calls: list[str] = []

    async def stream(self, backend_url: str, output: GeneratedOutput) -> AsyncIterator[bytes]:
        self.calls.append(output.filename)
        pending = self.failures.get(output.filename)
        if pending:
            raise pending.pop(0)
        data = self.files.get(output.filename)
        if data is None:
            raise OutputFetchError(f"no {output.filename}", retryable=False)
        for start in range(0, len(data), 7):
            yield data[start : start + 7]


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[RunMessage] = []

    async def publish(self, event: RunMessage) -> None:
        self.published.append(event)

    @property
    def stored_events(self) -> list[RunStored]:
        return [e for e in self.published if isinstance(e, RunStored)]

    @property
    def failed_events(self) -> list[RunFailed]:
        return [e for e in self.published if isinstance(e, RunFailed)]
