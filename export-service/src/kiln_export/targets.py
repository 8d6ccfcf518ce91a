"""Where finished archives go: the exports volume (default) or S3 (multipart upload).

A target opens an ``Upload`` — a sink the archive writer pushes bytes into — that is either
committed (the archive appears whole, under its final name) or aborted (nothing remains).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from kiln_storage.s3 import S3Location

PART_SIZE = 8 << 20  # S3's minimum part is 5 MiB; 8 MiB keeps memory small and parts few


class Upload(Protocol):
    def write(self, data: bytes, /) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class VolumeUpload:
    def __init__(self, final: Path) -> None:
        self.final = final
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".partial")
        self.tmp = Path(tmp)
        self._handle = os.fdopen(fd, "wb", buffering=1 << 20)

    def write(self, data: bytes) -> None:
        self._handle.write(data)

    def commit(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        os.replace(self.tmp, self.final)

    def abort(self) -> None:
        self._handle.close()
        self.tmp.unlink(missing_ok=True)


class VolumeTarget:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / name

    def open(self, name: str) -> VolumeUpload:
        self.directory.mkdir(parents=True, exist_ok=True)
        return VolumeUpload(self.path(name))

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def clear_partials(self, older_than_seconds: float) -> int:
        """Remove uploads a killed process left half-written. Only old ones: a fresh partial
        may belong to a job another replica is building right now."""
        removed = 0
        if self.directory.is_dir():
            cutoff = time.time() - older_than_seconds
            for leftover in self.directory.glob(".*.partial"):
                with contextlib.suppress(FileNotFoundError):
                    if leftover.stat().st_mtime < cutoff:
                        leftover.unlink()
                        removed += 1
        return removed


class S3Upload:
    """A multipart upload fed in 8 MiB parts: at most one part is held in memory."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        created = client.create_multipart_upload(Bucket=bucket, Key=key)
        self.upload_id: str = created["UploadId"]
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []

    def _send(self, data: bytes) -> None:
        number = len(self._parts) + 1
        answer = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= PART_SIZE:
            self._send(bytes(self._buffer[:PART_SIZE]))
            del self._buffer[:PART_SIZE]

    def commit(self) -> None:
        if self._buffer or not self._parts:
            self._send(bytes(self._buffer))  # the last part may be small (or empty if alone)
            self._buffer.clear()
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        self._buffer.clear()
        self.client.abort_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
        )


class S3Target:
    def __init__(self, client: Any, location: S3Location) -> None:
        self.client = client
        self.location = location

    def open(self, name: str) -> S3Upload:
        return S3Upload(self.client, self.location.bucket, self.location.key(name))

    def presign(self, name: str, expires_in_seconds: int) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.location.bucket, "Key": self.location.key(name)},
            ExpiresIn=expires_in_seconds,
        )
        return url

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.location.bucket, Key=self.location.key(name))
