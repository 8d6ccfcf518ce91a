"""Entity meta read from real files, written by the same encoders the ComfyUI simulator uses
(Pillow and PyAV), so the parsers meet real headers, not hand-made ones."""

from __future__ import annotations

import io
import wave
from fractions import Fraction
from pathlib import Path

import pytest
from comfyui_sim.media import Audio, Video, save_animated_webp, save_flac, save_mp4
from kiln_media.formats import check_format, probe
from PIL import Image


def image(width: int, height: int) -> Image.Image:
    return Image.new("RGB", (width, height), (200, 30, 30))


@pytest.mark.parametrize(
    ("fmt", "options"),
    [
        ("PNG", {}),
        ("GIF", {}),
        ("JPEG", {"quality": 80}),
        ("WEBP", {"lossless": True}),
        ("WEBP", {"quality": 70}),
    ],
)
def test_image_sizes(tmp_path: Path, fmt: str, options: dict[str, object]) -> None:
    path = tmp_path / f"x.{fmt.lower()}"
    image(37, 23).save(path, format=fmt, **options)
    assert probe(path) == {"width": 37, "height": 23}


def test_animated_webp_size(tmp_path: Path) -> None:
    path = tmp_path / "a.webp"
    save_animated_webp(
        [image(40, 30), image(40, 30)],
        path,
        fps=6,
        lossless=False,
        quality=80,
        method=4,
        prompt=None,
        extra_pnginfo=None,
    )
    assert probe(path) == {"width": 40, "height": 30}


def test_flac_duration(tmp_path: Path) -> None:
    rate, seconds = 44100, 1.5
    clip = bytes(int(rate * seconds) * 4 * 2)  # stereo float32 silence
    path = tmp_path / "a.flac"
    save_flac(Audio(sample_rate=rate, channels=2, clips=(clip,)), 0, path)
    assert probe(path) == {"duration": 1.5}


def test_wav_duration(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(8000 * 2 * 2))  # two seconds
    path = tmp_path / "a.wav"
    path.write_bytes(buffer.getvalue())
    assert probe(path) == {"duration": 2.0}


def test_mp4_size_and_duration(tmp_path: Path) -> None:
    frames = tuple(image(64, 48) for _ in range(12))
    path = tmp_path / "v.mp4"
    save_mp4(Video(frames=frames, frame_rate=Fraction(6), audio=None), path)
    meta = probe(path)
    assert (meta["width"], meta["height"]) == (64, 48)
    assert meta["duration"] == pytest.approx(2.0, abs=0.2)
    assert check_format("mp4", path.read_bytes()[:64]) is None


def test_unknown_bytes_give_no_meta(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("just words")
    assert probe(path) == {}
