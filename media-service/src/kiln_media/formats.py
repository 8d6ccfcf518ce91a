"""Recognising stored files by their bytes, not by what a backend claims."""

from __future__ import annotations

import mimetypes
import struct
from pathlib import Path
from typing import Any, BinaryIO

_EXTRA_TYPES = {
    "flac": "audio/flac",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "glb": "model/gltf-binary",
    "gltf": "model/gltf+json",
    "obj": "model/obj",
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
}


def mime_for(ext: str) -> str:
    ext = ext.lower()
    if ext in _EXTRA_TYPES:
        return _EXTRA_TYPES[ext]
    guessed, _ = mimetypes.guess_type(f"x.{ext}")
    return guessed or "application/octet-stream"


def sniff(head: bytes) -> str | None:
    """The extension the leading bytes prove, or None when they prove nothing we know."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"GIF87a") or head.startswith(b"GIF89a"):
        return "gif"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"fLaC"):
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head.startswith(b"glTF"):
        return "glb"
    return None


# Extensions whose bytes must match; anything else (text, obj, …) is checked for non-emptiness only.
_SNIFFED = {"png", "webp", "gif", "jpg", "jpeg", "flac", "ogg", "wav", "mp4", "mov", "webm", "glb"}
_ALIASES = {"jpeg": "jpg", "mov": "mp4", "m4a": "mp4"}


def check_format(ext: str, head: bytes) -> str | None:
    """None if the bytes fit the extension, else a sentence saying why not."""
    ext = _ALIASES.get(ext.lower(), ext.lower())
    if ext not in _SNIFFED:
        return None
    found = sniff(head)
    if found != ext:
        return f"expected {ext} data, found {found or 'unrecognised bytes'}"
    return None


def image_meta(head: bytes) -> dict[str, Any]:
    """Width and height from an image's first bytes (PNG, GIF, WebP, JPEG), no decoder needed."""
    size = _image_size(head)
    return {"width": size[0], "height": size[1]} if size else {}


def _image_size(head: bytes) -> tuple[int, int] | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24 and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return int(width), int(height)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack("<HH", head[6:10])
        return int(width), int(height)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
        return _webp_size(head)
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(head)
    return None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    return None


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 9 <= len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
            return int(width), int(height)
        (length,) = struct.unpack(">H", head[pos + 2 : pos + 4])
        pos += 2 + int(length)
    return None


def _flac_duration(head: bytes) -> float | None:
    # fLaC, a 4-byte block header, then STREAMINFO: rate (20 bits) … total samples (36 bits).
    if not head.startswith(b"fLaC") or len(head) < 26 or head[4] & 0x7F != 0:
        return None
    packed = int.from_bytes(head[18:26], "big")
    rate = packed >> 44
    samples = packed & 0xFFFFFFFFF
    return samples / rate if rate and samples else None


def _wav_duration(head: bytes) -> float | None:
    pos, byte_rate = 12, 0
    while pos + 8 <= len(head):
        kind, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if kind == b"fmt " and pos + 20 <= len(head):
            byte_rate = int.from_bytes(head[pos + 16 : pos + 20], "little")
        elif kind == b"data":
            return size / byte_rate if byte_rate else None
        pos += 8 + size + (size & 1)
    return None


def _mp4_boxes(handle: BinaryIO, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes between ``start`` and ``end``."""
    boxes = []
    pos = start
    while pos + 8 <= end:
        handle.seek(pos)
        header = handle.read(16)
        if len(header) < 8:
            break
        size, kind = struct.unpack(">I4s", header[:8])
        offset = 8
        if size == 1 and len(header) == 16:
            (size,) = struct.unpack(">Q", header[8:16])
            offset = 16
        elif size == 0:
            size = end - pos
        if size < offset:
            break
        boxes.append((kind, pos + offset, min(pos + size, end)))
        pos += size
    return boxes


def _mp4_meta(handle: BinaryIO, file_size: int) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for kind, start, end in _mp4_boxes(handle, 0, file_size):
        if kind != b"moov":
            continue
        for inner, istart, iend in _mp4_boxes(handle, start, end):
            if inner == b"mvhd":
                handle.seek(istart)
                body = handle.read(32)
                if body[:1] == b"\x01" and len(body) >= 32:
                    timescale, duration = struct.unpack(">IQ", body[20:32])
                else:
                    timescale, duration = struct.unpack(">II", body[12:20])
                if timescale:
                    meta["duration"] = round(duration / timescale, 3)
            elif inner == b"trak" and "width" not in meta:
                meta.update(_mp4_track_size(handle, istart, iend))
    return meta


def _mp4_track_size(handle: BinaryIO, start: int, end: int) -> dict[str, Any]:
    for kind, bstart, _ in _mp4_boxes(handle, start, end):
        if kind == b"tkhd":
            handle.seek(bstart)
            body = handle.read(96)
            base = 88 if body[:1] == b"\x01" else 76  # after flags, times, ids, matrix
            if len(body) >= base + 8:
                width, height = struct.unpack(">II", body[base : base + 8])
                if width and height:
                    return {"width": width >> 16, "height": height >> 16}
    return {}


PROBE_BYTES = 64 * 1024


def probe(path: Path) -> dict[str, Any]:
    """What is cheap to read from a stored file's headers: width/height for images and video,
    duration for FLAC, WAV and MP4. Never decodes; empty when the format is not one of these."""
    with path.open("rb") as handle:
        head = handle.read(PROBE_BYTES)
        found = sniff(head)
        if found == "mp4":
            return _mp4_meta(handle, path.stat().st_size)
    meta = image_meta(head)
    duration = _flac_duration(head) if found == "flac" else None
    if found == "wav":
        duration = _wav_duration(head)
    if duration is not None:
        meta["duration"] = round(duration, 3)
    return meta
