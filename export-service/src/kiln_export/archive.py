"""Streaming archive writers: ZIP (stored, ZIP64 when needed) and tar.gz, both in one pass.

Both push bytes into a sink (anything with ``write``), so one writer serves every target: a
file on the exports volume, an S3 multipart upload, or an HTTP response. Memory stays
constant whatever the archive's size: file data flows through in chunks, and the ZIP central
directory (one record per file, needed at the very end) is spooled to a temp file rather
than kept in a list.

Why not a library: the ZIP streamers we looked at keep the central directory in memory and
pull rather than push, and the tar writer in the standard library wants a file object to
read from. Sizes are known up front here (from ``metadata.json``), which makes the format
small enough to write directly; tests check the output with ``zipfile``, ``unzip -t``,
``tarfile`` and ``bagit``.
"""

from __future__ import annotations

import struct
import tarfile
import tempfile
import zlib
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

ZIP32_LIMIT = 0xFFFFFFFF
ZIP16_LIMIT = 0xFFFF
_VERSION_ZIP64 = 45
_VERSION_DEFAULT = 20
_MADE_BY_UNIX = 3 << 8
_FLAGS = 0x0808  # bit 3: sizes and CRC follow the data; bit 11: names are UTF-8
_FILE_MODE = 0o100644


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


class SizeMismatchError(Exception):
    """The chunks given for an entry did not add up to the size announced for it."""

    def __init__(self, name: str, expected: int, actual: int) -> None:
        super().__init__(f"{name}: expected {expected} bytes, got {actual}")
        self.name = name
        self.expected = expected
        self.actual = actual


class ArchiveWriter(Protocol):
    def add(self, name: str, size: int, mtime: datetime, chunks: Iterable[bytes]) -> None: ...

    def close(self) -> None: ...

    def abandon(self, name: str, note: bytes, mtime: datetime) -> None:
        """End a stream that cannot be completed: add ``note`` as a last entry that streaming
        readers can still see, and leave the archive deliberately invalid (no ZIP central
        directory; no tar end blocks nor gzip trailer) so no tool takes it for whole."""


def _dos_time(moment: datetime) -> tuple[int, int]:
    year = min(max(moment.year, 1980), 2107)
    date = ((year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return time, date


class ZipWriter:
    """Stored (uncompressed) entries: research media is already compressed, and stored
    entries keep the archive as fast to write as a plain copy."""

    def __init__(
        self, sink: Sink, zip64_from: int = ZIP32_LIMIT, zip64_entries_from: int = ZIP16_LIMIT
    ) -> None:
        # The thresholds are parameters so tests can force the ZIP64 paths without 4 GiB.
        self._sink = sink
        self._zip64_from = zip64_from
        self._zip64_entries_from = zip64_entries_from
        self._offset = 0
        self._count = 0
        self._central = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 - closed in close()
        self._closed = False

    def _emit(self, data: bytes) -> None:
        self._sink.write(data)
        self._offset += len(data)

    def add(self, name: str, size: int, mtime: datetime, chunks: Iterable[bytes]) -> None:
        encoded = name.encode("utf-8")
        dos_time, dos_date = _dos_time(mtime)
        zip64 = size >= self._zip64_from
        header_offset = self._offset
        # With bit 3 set the header carries zeros; a ZIP64 extra field announces 8-byte sizes
        # in the data descriptor.
        extra = struct.pack("<HHQQ", 0x0001, 16, 0, 0) if zip64 else b""
        self._emit(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                _VERSION_ZIP64 if zip64 else _VERSION_DEFAULT,
                _FLAGS,
                0,
                dos_time,
                dos_date,
                0,
                ZIP32_LIMIT if zip64 else 0,
                ZIP32_LIMIT if zip64 else 0,
                len(encoded),
                len(extra),
            )
            + encoded
            + extra
        )
        crc = 0
        written = 0
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
            written += len(chunk)
            self._emit(chunk)
        if written != size:
            raise SizeMismatchError(name, size, written)
        if zip64:
            self._emit(struct.pack("<IIQQ", 0x08074B50, crc, size, size))
        else:
            self._emit(struct.pack("<IIII", 0x08074B50, crc, size, size))
        self._central_record(encoded, dos_time, dos_date, crc, size, header_offset)

    def _central_record(
        self, encoded: bytes, dos_time: int, dos_date: int, crc: int, size: int, offset: int
    ) -> None:
        fields64: list[int] = []
        big = size >= self._zip64_from
        far = offset >= self._zip64_from
        if big:
            fields64 += [size, size]  # uncompressed, then compressed
        if far:
            fields64.append(offset)
        extra = (
            struct.pack("<HH", 0x0001, 8 * len(fields64))
            + struct.pack(f"<{len(fields64)}Q", *fields64)
            if fields64
            else b""
        )
        record = struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            _MADE_BY_UNIX | _VERSION_ZIP64,
            _VERSION_ZIP64 if fields64 else _VERSION_DEFAULT,
            _FLAGS,
            0,
            dos_time,
            dos_date,
            crc,
            ZIP32_LIMIT if big else size,
            ZIP32_LIMIT if big else size,
            len(encoded),
            len(extra),
            0,
            0,
            0,
            _FILE_MODE << 16,
            ZIP32_LIMIT if far else offset,
        )
        self._central.write(record + encoded + extra)
        self._count += 1

    def abandon(self, name: str, note: bytes, mtime: datetime) -> None:
        self._closed = True
        self.add(name, len(note), mtime, [note])
        self._central.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        central_offset = self._offset
        self._central.seek(0)
        while chunk := self._central.read(1 << 20):
            self._emit(chunk)
        self._central.close()
        central_size = self._offset - central_offset
        needs_zip64 = (
            self._count >= self._zip64_entries_from
            or central_offset >= self._zip64_from
            or central_size >= self._zip64_from
        )
        if needs_zip64:
            zip64_end_offset = self._offset
            self._emit(
                struct.pack(
                    "<IQHHIIQQQQ",
                    0x06064B50,
                    44,
                    _MADE_BY_UNIX | _VERSION_ZIP64,
                    _VERSION_ZIP64,
                    0,
                    0,
                    self._count,
                    self._count,
                    central_size,
                    central_offset,
                )
            )
            self._emit(struct.pack("<IIQI", 0x07064B50, 0, zip64_end_offset, 1))
        self._emit(
            struct.pack(
                "<IHHHHIIH",
                0x06054B50,
                0,
                0,
                ZIP16_LIMIT if needs_zip64 else self._count,
                ZIP16_LIMIT if needs_zip64 else self._count,
                ZIP32_LIMIT if needs_zip64 else central_size,
                ZIP32_LIMIT if needs_zip64 else central_offset,
                0,
            )
        )


class TarGzWriter:
    """POSIX pax tar, gzip-compressed as it goes (zlib with a gzip wrapper, level 6)."""

    _BLOCK = tarfile.BLOCKSIZE
    _RECORD = tarfile.RECORDSIZE

    def __init__(self, sink: Sink, level: int = 6) -> None:
        self._sink = sink
        self._gzip = zlib.compressobj(level, zlib.DEFLATED, 31)
        self._raw_offset = 0
        self._closed = False

    def _emit(self, data: bytes) -> None:
        self._raw_offset += len(data)
        compressed = self._gzip.compress(data)
        if compressed:
            self._sink.write(compressed)

    def add(self, name: str, size: int, mtime: datetime, chunks: Iterable[bytes]) -> None:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = int(mtime.timestamp())
        info.mode = 0o644
        info.uname = info.gname = "kiln"
        self._emit(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        written = 0
        for chunk in chunks:
            written += len(chunk)
            if written > size:
                raise SizeMismatchError(name, size, written)
            self._emit(chunk)
        if written != size:
            raise SizeMismatchError(name, size, written)
        remainder = size % self._BLOCK
        if remainder:
            self._emit(b"\0" * (self._BLOCK - remainder))

    def abandon(self, name: str, note: bytes, mtime: datetime) -> None:
        self._closed = True
        self.add(name, len(note), mtime, [note])
        self._sink.write(self._gzip.flush(zlib.Z_SYNC_FLUSH))  # readable so far, no trailer

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        end = b"\0" * (2 * self._BLOCK)
        self._emit(end)
        remainder = self._raw_offset % self._RECORD
        if remainder:
            self._emit(b"\0" * (self._RECORD - remainder))
        self._sink.write(self._gzip.flush())
