"""A BagIt bag (RFC 8493) written into an archive in one pass.

Payload files go first, each hashed (sha256 and sha512, both in the one read) as it streams;
the manifest lines are spooled to temp files as they are made and the tag files
(``manifest-sha256.txt``, ``manifest-sha512.txt``, ``bag-info.txt``, ``tagmanifest-*.txt``)
follow the payload at the end, where every figure they state is known. sha512 beside sha256 is
what the RO-Crate BagIt notes recommend. Memory use does not grow with the number or size of
files.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime

from kiln_export.archive import ArchiveWriter

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
ALGORITHMS = ("sha256", "sha512")
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
        self._manifests = {algorithm: Spool() for algorithm in ALGORITHMS}
        self._tag_lines: dict[str, list[str]] = {algorithm: [] for algorithm in ALGORITHMS}
        self._add_tag("bagit.txt", BAGIT_TXT)

    def _add_tag(self, name: str, data: bytes) -> None:
        self.archive.add(f"{self.top}/{name}", len(data), self.bagging_date, [data])
        for algorithm in ALGORITHMS:
            digest = hashlib.new(algorithm, data).hexdigest()
            self._tag_lines[algorithm].append(f"{digest}  {name}\n")

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
        digests = {algorithm: hashlib.new(algorithm) for algorithm in ALGORITHMS}
        sha256 = digests["sha256"]

        def hashed() -> Iterator[bytes]:
            for chunk in chunks:
                for digest in digests.values():
                    digest.update(chunk)
                yield chunk
            if expected_sha256 is not None and sha256.hexdigest() != expected_sha256:
                raise ChecksumMismatchError(relpath, expected_sha256, sha256.hexdigest())

        self.archive.add(f"{self.top}/data/{relpath}", size, mtime, hashed())
        for algorithm, digest in digests.items():
            self._manifests[algorithm].write(f"{digest.hexdigest()}  data/{relpath}\n".encode())
        self.payload_bytes += size
        self.payload_files += 1
        return sha256.hexdigest()

    def add_payload_spool(self, relpath: str, spool: Spool) -> str:
        return self.add_payload(relpath, spool.size, self.bagging_date, spool.chunks())

    def finish(self, bag_info: list[tuple[str, str]]) -> None:
        """Write the tag files after the payload and close the archive."""
        for algorithm in ALGORITHMS:
            self._add_manifest(algorithm)
        info = [
            ("Bagging-Date", self.bagging_date.date().isoformat()),
            ("Payload-Oxum", f"{self.payload_bytes}.{self.payload_files}"),
            *bag_info,
        ]
        text = "".join(f"{label}: {_tag_value(value)}\n" for label, value in info)
        self._add_tag("bag-info.txt", text.encode("utf-8"))
        for algorithm in ALGORITHMS:
            tagmanifest = "".join(self._tag_lines[algorithm]).encode()
            self.archive.add(
                f"{self.top}/tagmanifest-{algorithm}.txt",
                len(tagmanifest),
                self.bagging_date,
                [tagmanifest],
            )
        self.archive.close()

    def _add_manifest(self, algorithm: str) -> None:
        """``manifest-{algorithm}.txt`` streamed from its spool; each tag manifest lists both
        payload manifests, each hashed by its own algorithm."""
        name = f"manifest-{algorithm}.txt"
        spool = self._manifests[algorithm]
        digests = {a: hashlib.new(a) for a in ALGORITHMS}

        def chunks() -> Iterator[bytes]:
            for chunk in spool.chunks():
                for digest in digests.values():
                    digest.update(chunk)
                yield chunk

        self.archive.add(f"{self.top}/{name}", spool.size, self.bagging_date, chunks())
        for a, digest in digests.items():
            self._tag_lines[a].append(f"{digest.hexdigest()}  {name}\n")
