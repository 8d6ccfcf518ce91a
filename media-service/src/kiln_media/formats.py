"""Recognising stored files by their bytes, not by what a backend claims."""

from __future__ import annotations

import mimetypes
import struct
from typing import Any

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
    """Width and height from a PNG's IHDR (the first 24 bytes); cheap, no decoder needed."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24 and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return {"width": width, "height": height}
    return {}
