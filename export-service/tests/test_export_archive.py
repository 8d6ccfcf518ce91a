"""The streaming archive writers, read back by zipfile, unzip -t and tarfile."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kiln_export.archive import SizeMismatchError, TarGzWriter, ZipWriter

NOW = datetime(2026, 11, 21, 10, 30, 12, tzinfo=UTC)
FILES = {f"bag/data/{i:02d}_é.bin": os.urandom(1000 * i + 1) for i in range(6)} | {"bag/empty": b""}


def write_zip(**thresholds: int) -> bytes:
    sink = io.BytesIO()
    writer = ZipWriter(sink, **thresholds)
    for name, data in FILES.items():
        writer.add(name, len(data), NOW, [data[:333], data[333:]])
    writer.close()
    return sink.getvalue()


@pytest.mark.parametrize(
    "thresholds",
    [{}, {"zip64_from": 0, "zip64_entries_from": 0}],
    ids=["zip32", "forced-zip64"],
)
def test_zip_reads_back_with_zipfile_and_unzip(thresholds: dict[str, int], tmp_path: Path) -> None:
    data = write_zip(**thresholds)
    path = tmp_path / "a.zip"
    path.write_bytes(data)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert {i.filename: zf.read(i) for i in zf.infolist()} == FILES
        info = zf.getinfo("bag/empty")
        assert info.date_time == (2026, 11, 21, 10, 30, 12)
        assert info.compress_type == zipfile.ZIP_STORED
    assert shutil.which("unzip"), "unzip is missing: run `make install`"
    tested = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # The forced variant really wrote the ZIP64 records (end record and locator).
    has_zip64_end = b"PK\x06\x06" in data[-200:]
    assert has_zip64_end == bool(thresholds)


def test_zip_refuses_chunks_that_do_not_match_the_announced_size() -> None:
    writer = ZipWriter(io.BytesIO())
    with pytest.raises(SizeMismatchError) as caught:
        writer.add("short", 10, NOW, [b"123"])
    assert (caught.value.expected, caught.value.actual) == (10, 3)


def test_tar_gz_reads_back_with_tarfile() -> None:
    sink = io.BytesIO()
    writer = TarGzWriter(sink)
    for name, data in FILES.items():
        writer.add(name, len(data), NOW, [data])
    writer.close()
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue()), mode="r:gz") as tf:
        members = tf.getmembers()
        assert [m.name for m in members] == list(FILES)
        for member in members:
            extracted = tf.extractfile(member)
            assert extracted is not None
            assert extracted.read() == FILES[member.name]
            assert member.mtime == int(NOW.timestamp())


def test_tar_refuses_more_bytes_than_announced() -> None:
    writer = TarGzWriter(io.BytesIO())
    with pytest.raises(SizeMismatchError):
        writer.add("long", 2, NOW, [b"123"])


NOTE = b"run X, file Y: sha256 mismatch"


def abandoned(writer: ZipWriter | TarGzWriter, sink: io.BytesIO, path: Path) -> bytes:
    writer.add("bag/a", 3, NOW, [b"abc"])
    writer.abandon("bag/EXPORT-FAILED.txt", NOTE, NOW)
    path.write_bytes(sink.getvalue())
    return sink.getvalue()


def test_an_abandoned_zip_is_invalid_but_carries_its_note(tmp_path: Path) -> None:
    sink = io.BytesIO()
    data = abandoned(ZipWriter(sink), sink, tmp_path / "failed.zip")
    assert not zipfile.is_zipfile(tmp_path / "failed.zip")
    tested = subprocess.run(["unzip", "-t", str(tmp_path / "failed.zip")], capture_output=True)
    assert tested.returncode != 0
    # The note is the last entry (followed only by its 16-byte data descriptor).
    assert data[:-16].endswith(NOTE)


def test_an_abandoned_tar_gz_fails_gzip_but_streams_its_note(tmp_path: Path) -> None:
    sink = io.BytesIO()
    data = abandoned(TarGzWriter(sink), sink, tmp_path / "failed.tar.gz")
    tested = subprocess.run(["gzip", "-t", str(tmp_path / "failed.tar.gz")], capture_output=True)
    assert tested.returncode != 0
    assert NOTE in zlib.decompressobj(31).decompress(data)
