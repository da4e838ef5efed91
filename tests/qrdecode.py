"""Decoding what zapvisor draws with a real QR decoder (zxing-cpp), for the tests."""

from __future__ import annotations

import re
import struct
import zlib

import numpy as np
import zxingcpp

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def decode_pixels(rows: list[list[int]], scale: int = 4) -> str | None:
    width = max(len(r) for r in rows)
    img = np.array([r + [255] * (width - len(r)) for r in rows], dtype=np.uint8)
    img = np.pad(img.repeat(scale, 0).repeat(scale, 1), 16, constant_values=255)
    found = zxingcpp.read_barcodes(img)
    return found[0].text if found else None


def decode_half_blocks(text: str) -> str | None:
    """Half-block text (ink = dark module; colour codes ignored) → the payload."""
    rows: list[list[int]] = []
    for line in _ANSI.sub("", text).splitlines():
        rows.append([0 if c in "▀█" else 255 for c in line])
        rows.append([0 if c in "▄█" else 255 for c in line])
    return decode_pixels(rows)


_SEXTANT_BITS: dict[str, int] = {}


def cell_dark(char: str, fy: float, fx: float) -> bool:
    """Whether a terminal cell showing ``char`` is inked at (``fy``, ``fx``), fractions
    of its height and width: half-blocks by halves, sextants by their 3x2 sub-cells."""
    if not _SEXTANT_BITS:
        from ecosystem.qr import _sextant

        _SEXTANT_BITS.update({_sextant(b): b for b in range(64)})
    if char in "▀▄":
        return (char == "▀") == (fy < 0.5)
    bits = _SEXTANT_BITS.get(char, 0)  # " ", "█", "▌", "▐" and the sextants
    return bool(bits >> (2 * int(fy * 3) + int(fx * 2)) & 1)


def decode_cells(text: str, cell: tuple[int, int] = (6, 12)) -> str | None:
    """Terminal text (half-blocks or sextants; colour codes ignored) drawn as a terminal
    does: each cell ``cell`` pixels (width, height, about 1:2), so a half-block module
    is square and a sextant module 3:4, as on screen → the payload."""
    width, height = cell
    rows: list[list[int]] = []
    for line in _ANSI.sub("", text).splitlines():
        for y in range(height):
            rows.append(
                [
                    0 if cell_dark(char, y / height, dx / width) else 255
                    for char in line
                    for dx in range(width)
                ]
            )
    return decode_pixels(rows, scale=1)


def decode_png(data: bytes) -> str | None:
    """A 1-bit greyscale PNG as zapvisor writes it → the payload."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width = struct.unpack(">I", body[:4])[0]
            assert body[8] == 1 and body[9] == 0, "expected 1-bit greyscale"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = (width + 7) // 8 + 1
    rows = []
    for y in range(len(raw) // stride):
        line = raw[y * stride + 1 : (y + 1) * stride]
        bits = [(byte >> (7 - i)) & 1 for byte in line for i in range(8)][:width]
        rows.append([255 if b else 0 for b in bits])
    return decode_pixels(rows, scale=1)
