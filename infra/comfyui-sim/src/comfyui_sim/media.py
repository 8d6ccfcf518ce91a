"""In-memory media types that flow between nodes, and the writers of real output files.

Images are Pillow ``RGB`` images, a batch is a list of them. Audio is float32 PCM, interleaved,
one clip per batch item. A video is frames plus a frame rate plus optional audio.
Everything here is synchronous and pure file I/O: the executor runs it in a worker thread.
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image
from PIL.PngImagePlugin import PngInfo

BYTES_PER_SAMPLE = 4  # float32
AUDIO_CHUNK_SAMPLES = 4096

# The EXIF tags (Make, Model) where ComfyUI keeps the workflow and the prompt in a WEBP.
EXIF_MAKE = 0x010F
EXIF_MODEL = 0x0110


@dataclass(frozen=True)
class Audio:
    """ComfyUI's AUDIO: ``clips`` holds one interleaved float32 little-endian buffer per batch item."""

    sample_rate: int
    channels: int
    clips: tuple[bytes, ...]

    def samples(self, index: int = 0) -> int:
        return len(self.clips[index]) // (BYTES_PER_SAMPLE * self.channels)


@dataclass(frozen=True)
class Video:
    """ComfyUI's VIDEO as made by CreateVideo."""

    frames: tuple[Image.Image, ...]
    frame_rate: Fraction
    audio: Audio | None

    def dimensions(self) -> tuple[int, int]:
        if not self.frames:
            raise ValueError("Video has no frames")
        return self.frames[0].size


@dataclass(frozen=True)
class SavePath:
    """What ComfyUI's ``folder_paths.get_save_image_path`` returns."""

    full_output_folder: Path
    filename: str
    counter: int
    subfolder: str
    filename_prefix: str


class OutsideOutputFolderError(Exception):
    """A ``filename_prefix`` that would write outside the output folder."""


def _compute_vars(prefix: str, width: int, height: int) -> str:
    now = time.localtime()
    replacements = {
        "%width%": str(width),
        "%height%": str(height),
        "%year%": str(now.tm_year),
        "%month%": str(now.tm_mon).zfill(2),
        "%day%": str(now.tm_mday).zfill(2),
        "%hour%": str(now.tm_hour).zfill(2),
        "%minute%": str(now.tm_min).zfill(2),
        "%second%": str(now.tm_sec).zfill(2),
    }
    for key, value in replacements.items():
        prefix = prefix.replace(key, value)
    return prefix


def get_save_image_path(
    filename_prefix: str, output_dir: Path, width: int = 0, height: int = 0
) -> SavePath:
    """Resolve a prefix the way ComfyUI does.

    ``"a/b/name"`` → subfolder ``a/b``, files ``name_00001_.ext``; the counter is one past the
    highest existing counter for that name in that folder. A prefix escaping ``output_dir``
    raises :class:`OutsideOutputFolderError` (ComfyUI raises at run time, not at validation).
    """
    root = os.path.abspath(output_dir)
    if "%" in filename_prefix:
        filename_prefix = _compute_vars(filename_prefix, width, height)

    subfolder = os.path.dirname(os.path.normpath(filename_prefix))
    filename = os.path.basename(os.path.normpath(filename_prefix))
    full_output_folder = os.path.join(root, subfolder)
    common = os.path.commonpath((root, os.path.abspath(full_output_folder)))
    if common != root or not filename or filename in {".", ".."}:
        raise OutsideOutputFolderError(
            "**** ERROR: Saving image outside the output folder is not allowed."
            f"\n full_output_folder: {os.path.abspath(full_output_folder)}"
            f"\n         output_dir: {root}"
            f"\n         commonpath: {common}"
        )

    prefix_len = len(os.path.basename(filename_prefix))

    def map_filename(name: str) -> tuple[int, str]:
        prefix = name[: prefix_len + 1]
        try:
            digits = int(name[prefix_len + 1 :].split("_")[0])
        except ValueError:
            digits = 0
        return digits, prefix

    counter = 1
    try:
        existing = [
            mapped
            for mapped in map(map_filename, os.listdir(full_output_folder))
            if os.path.normcase(mapped[1][:-1]) == os.path.normcase(filename)
            and mapped[1][-1:] == "_"
        ]
        if existing:
            counter = max(existing)[0] + 1
    except FileNotFoundError:
        os.makedirs(full_output_folder, exist_ok=True)
    return SavePath(Path(full_output_folder), filename, counter, subfolder, filename_prefix)


def _dump(value: Any) -> str:
    return json.dumps(value)


def save_png(
    image: Image.Image,
    path: Path,
    *,
    prompt: Mapping[str, Any] | None,
    extra_pnginfo: Mapping[str, Any] | None,
    compress_level: int,
) -> None:
    """A PNG with ComfyUI's tEXt chunks: ``prompt`` and one per ``extra_pnginfo`` key."""
    metadata = PngInfo()
    if prompt is not None:
        metadata.add_text("prompt", _dump(prompt))
    if extra_pnginfo is not None:
        for key, value in extra_pnginfo.items():
            metadata.add_text(key, _dump(value))
    image.save(path, format="PNG", pnginfo=metadata, compress_level=compress_level)


def save_animated_webp(
    images: Sequence[Image.Image],
    path: Path,
    *,
    fps: float,
    lossless: bool,
    quality: int,
    method: int,
    prompt: Mapping[str, Any] | None,
    extra_pnginfo: Mapping[str, Any] | None,
) -> None:
    """An animated WEBP carrying the prompt and workflow in EXIF, as ComfyUI writes it."""
    first = images[0]
    exif = first.getexif()
    if prompt is not None:
        exif[EXIF_MODEL] = f"prompt:{_dump(prompt)}"
    if extra_pnginfo is not None:
        tag = EXIF_MAKE
        for key, value in extra_pnginfo.items():
            exif[tag] = f"{key}:{_dump(value)}"
            tag -= 1
    first.save(
        path,
        format="WEBP",
        save_all=True,
        duration=int(1000.0 / fps),
        append_images=list(images[1:]),
        exif=exif,
        lossless=lossless,
        quality=quality,
        method=method,
    )


def _layout(channels: int) -> str:
    if channels == 1:
        return "mono"
    if channels == 2:
        return "stereo"
    raise ValueError(f"Unsupported number of audio channels: {channels}")


def _audio_frames(clip: bytes, channels: int, sample_rate: int) -> list[av.AudioFrame]:
    layout = _layout(channels)
    frame_bytes = AUDIO_CHUNK_SAMPLES * channels * BYTES_PER_SAMPLE
    frames: list[av.AudioFrame] = []
    pts = 0
    for start in range(0, len(clip), frame_bytes):
        chunk = clip[start : start + frame_bytes]
        samples = len(chunk) // (channels * BYTES_PER_SAMPLE)
        if samples == 0:
            break
        frame = av.AudioFrame(format="flt", layout=layout, samples=samples)
        plane = frame.planes[0]
        padding = plane.buffer_size - len(chunk)
        plane.update(chunk + bytes(padding) if padding > 0 else chunk)
        frame.sample_rate = sample_rate
        frame.pts = pts
        pts += samples
        frames.append(frame)
    return frames


def save_flac(
    audio: Audio, index: int, path: Path, *, metadata: Mapping[str, str] | None = None
) -> None:
    """One clip of ``audio`` as a FLAC file (container metadata as ComfyUI sets it)."""
    if audio.sample_rate <= 0:
        raise ValueError(f"Invalid sample rate: {audio.sample_rate}")
    with av.open(str(path), mode="w", format="flac") as container:
        for key, value in (metadata or {}).items():
            container.metadata[key] = value
        stream = container.add_stream(
            "flac", rate=audio.sample_rate, layout=_layout(audio.channels)
        )
        for frame in _audio_frames(audio.clips[index], audio.channels, audio.sample_rate):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def save_mp4(video: Video, path: Path, *, metadata: Mapping[str, Any] | None = None) -> None:
    """An H.264 MP4 (plus AAC audio when the video has audio), like ComfyUI's SaveVideo."""
    width, height = video.dimensions()
    with av.open(str(path), mode="w", options={"movflags": "use_metadata_tags"}) as container:
        for key, value in (metadata or {}).items():
            container.metadata[key] = _dump(value)
        video_stream = container.add_stream("h264", rate=video.frame_rate)
        video_stream.width = width
        video_stream.height = height
        video_stream.pix_fmt = "yuv420p"
        audio_stream = None
        if video.audio is not None and video.audio.clips:
            audio_stream = container.add_stream(
                "aac", rate=video.audio.sample_rate, layout=_layout(video.audio.channels)
            )
        for image in video.frames:
            frame = av.VideoFrame.from_image(image.convert("RGB"))  # type: ignore[no-untyped-call]
            for packet in video_stream.encode(frame):
                container.mux(packet)
        for packet in video_stream.encode(None):
            container.mux(packet)
        if audio_stream is not None and video.audio is not None:
            clip = video.audio.clips[0]
            duration_samples = int(len(video.frames) / video.frame_rate * video.audio.sample_rate)
            clip = clip[: duration_samples * video.audio.channels * BYTES_PER_SAMPLE]
            for audio_frame in _audio_frames(clip, video.audio.channels, video.audio.sample_rate):
                for packet in audio_stream.encode(audio_frame):
                    container.mux(packet)
            for packet in audio_stream.encode(None):
                container.mux(packet)


def save_gif(images: Sequence[Image.Image], path: Path, *, frame_rate: float, loop: int) -> None:
    """An animated GIF, as VideoHelperSuite's ``VHS_VideoCombine`` writes with ``image/gif``."""
    frames = [image.convert("RGB") for image in images]
    frames[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=round(1000.0 / frame_rate),
        loop=loop,
    )


@dataclass(frozen=True)
class Mesh:
    """ComfyUI's MESH: vertices (x, y, z) and triangles (vertex indices)."""

    vertices: tuple[tuple[float, float, float], ...]
    faces: tuple[tuple[int, int, int], ...]


def save_glb(mesh: Mesh, path: Path, *, metadata: Mapping[str, Any] | None = None) -> None:
    """A binary glTF 2.0 file with one triangle mesh (what ComfyUI's ``SaveGLB`` writes)."""
    positions = b"".join(struct.pack("<3f", *v) for v in mesh.vertices)
    indices = b"".join(struct.pack("<3I", *f) for f in mesh.faces)
    binary = positions + indices
    binary += b"\0" * (-len(binary) % 4)
    lows = [min(v[i] for v in mesh.vertices) for i in range(3)]
    highs = [max(v[i] for v in mesh.vertices) for i in range(3)]
    document: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "comfyui-sim"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": len(positions), "target": 34962},
            {
                "buffer": 0,
                "byteOffset": len(positions),
                "byteLength": len(indices),
                "target": 34963,
            },
        ],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": len(mesh.vertices),
                "type": "VEC3",
                "min": lows,
                "max": highs,
            },
            {
                "bufferView": 1,
                "componentType": 5125,
                "count": 3 * len(mesh.faces),
                "type": "SCALAR",
            },
        ],
    }
    if metadata:
        document["asset"]["extras"] = {k: _dump(v) for k, v in metadata.items()}
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    with path.open("wb") as out:
        out.write(struct.pack("<4sII", b"glTF", 2, total))
        out.write(struct.pack("<I4s", len(text), b"JSON") + text)
        out.write(struct.pack("<I4s", len(binary), b"BIN\0") + binary)
