"""A BagIt bag (RFC 8493) written into an archive in one pass.

Payload files go first, each hashed (sha256) as it streams; the manifest lines are spooled
to a temp file as they are made and the tag files (``manifest-sha256.txt``, ``bag-info.txt``,
``tagmanifest-sha256.txt``) follow the payload at the end, where every figure they state is
known. Memory use does not grow with the number or size of files.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime

from kiln_export.archive import ArchiveWriter

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
SPOOL_IN_MEMORY = 1 << 20


class ChecksumMismatchError(Exception):
    """A file's bytes do not match the sha256 (or size) its run's ``metadata.json`` records."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(f"{path}: sha256 is {actual}, metadata.json says {expected}")
        self.path = path
        self.expected = expected
        self.actual = actual


class Spool:
    """Bytes written now and read back once, in memory while small, on disk beyond that."""

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - closed by chunks()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self.size += len(data)

    def chunks(self) -> Iterator[bytes]:
        self._file.seek(0)
        try:
            while chunk := self._file.read(1 << 20):
                yield chunk
        finally:
            self._file.close()


def _tag_value(value: str) -> str:
    # A tag value is one line; a newline would start a new (forged) label.
    return " ".join(value.split())


class BagWriter:
    def __init__(self, archive: ArchiveWriter, top: str, bagging_date: datetime) -> None:
        self.archive = archive
        self.top = top
        self.bagging_date = bagging_date
        self.payload_bytes = 0
        self.payload_files = 0
        self._manifest = Spool()
        self._tag_lines: list[str] = []
        self._add_tag("bagit.txt", BAGIT_TXT)

    def _add_tag(self, name: str, data: bytes) -> None:
        self.archive.add(f"{self.top}/{name}", len(data), self.bagging_date, [data])
        self._tag_lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")

    def add_payload(
        self,
        relpath: str,
        size: int,
        mtime: datetime,
        chunks: Iterable[bytes],
        expected_sha256: str | None = None,
    ) -> str:
        """Stream one file into ``data/{relpath}``; returns its sha256.

        With ``expected_sha256`` the digest is checked before the entry is closed, so a
        mismatch stops the archive at that file.
        """
        digest = hashlib.sha256()

        def hashed() -> Iterator[bytes]:
            for chunk in chunks:
                digest.update(chunk)
                yield chunk
            if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
                raise ChecksumMismatchError(relpath, expected_sha256, digest.hexdigest())

        self.archive.add(f"{self.top}/data/{relpath}", size, mtime, hashed())
        sha256 = digest.hexdigest()
        self._manifest.write(f"{sha256}  data/{relpath}\n".encode())
        self.payload_bytes += size
        self.payload_files += 1
        return sha256

    def add_payload_spool(self, relpath: str, spool: Spool) -> str:
        return self.add_payload(relpath, spool.size, self.bagging_date, spool.chunks())

    def finish(self, bag_info: list[tuple[str, str]]) -> None:
        """Write the tag files after the payload and close the archive."""
        manifest_size = self._manifest.size
        manifest_digest = hashlib.sha256()

        def manifest_chunks() -> Iterator[bytes]:
            for chunk in self._manifest.chunks():
                manifest_digest.update(chunk)
                yield chunk

        self.archive.add(
            f"{self.top}/manifest-sha256.txt", manifest_size, self.bagging_date, manifest_chunks()
        )
        self._tag_lines.append(f"{manifest_digest.hexdigest()}  manifest-sha256.txt\n")
        info = [
            ("Bagging-Date", self.bagging_date.date().isoformat()),
            ("Payload-Oxum", f"{self.payload_bytes}.{self.payload_files}"),
            *bag_info,
        ]
        text = "".join(f"{label}: {_tag_value(value)}\n" for label, value in info)
        self._add_tag("bag-info.txt", text.encode("utf-8"))
        tagmanifest = "".join(self._tag_lines).encode()
        self.archive.add(
            f"{self.top}/tagmanifest-sha256.txt", len(tagmanifest), self.bagging_date, [tagmanifest]
        )
        self.archive.close()
