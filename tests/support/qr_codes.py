"""Reading QR codes back in tests with zxing-cpp, a decoder independent of segno that drew them."""

from __future__ import annotations

from pathlib import Path

import zxingcpp
from PIL import Image

# segno's compact terminal drawing: (top, bottom) light? for each half-block character.
_HALVES = {"█": (True, True), "▀": (True, False), "▄": (False, True), " ": (False, False)}


def decode_image(image: Image.Image) -> list[str]:
    return [found.text for found in zxingcpp.read_barcodes(image)]


def decode_file(path: Path) -> list[str]:
    with Image.open(path) as image:
        return decode_image(image.convert("L"))


def terminal_qr_lines(output: str, marker: str) -> list[str]:
    """The block of half-block lines printed just above the line containing ``marker``."""
    lines = output.splitlines()
    end = next(i for i, line in enumerate(lines) if marker in line)
    start = end
    while start > 0 and lines[start - 1] and set(lines[start - 1]) <= set(_HALVES):
        start -= 1
    return lines[start:end]


def decode_terminal(lines: list[str], scale: int = 8) -> list[str]:
    """Draw the terminal QR code as pixels (a light block is white) and decode it."""
    width = max(len(line) for line in lines)
    image = Image.new("L", (width, 2 * len(lines)), 0)
    for row, line in enumerate(lines):
        for column, char in enumerate(line):
            top, bottom = _HALVES[char]
            image.putpixel((column, 2 * row), 255 if top else 0)
            image.putpixel((column, 2 * row + 1), 255 if bottom else 0)
    return decode_image(image.resize((width * scale, 2 * len(lines) * scale), Image.NEAREST))
