"""QR codes for terminals (Unicode half-blocks or sextants) and for HTTP (PNG data URLs).

A half-block cell shows two modules stacked, so a QR of N modules plus the quiet zone
takes N+2q columns and ceil((N+2q)/2) rows: 61x31 for a real WhatsApp code, which does
not fit an 80x24 terminal. The compact form draws 2x3 modules per cell with the Unicode
13 sextants (U+1FB00-U+1FB3B): ceil((N+2q)/2) columns by ceil((N+2q)/3) rows, 31x21
for the same code. A terminal cell is about twice as tall as wide, so its modules come
out 3:4, which phones read; but not every terminal font has the sextants, so it is the
operator's choice. The text forms use the ink convention (a drawn part is a dark
module); on a terminal the cells get explicit colours (black on white), so the code
reads the same on dark and light themes.
"""

from __future__ import annotations

import base64
import functools
import struct
import zlib

import qrcode
import qrcode.constants

QUIET_ZONE = 2
_LEVELS = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
# (top dark, bottom dark) → character, drawing dark modules as ink.
_HALF = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
_BLACK_ON_WHITE = "\x1b[38;5;16;48;5;231m"
_RESET = "\x1b[0m"


def matrix(payload: str, level: str = "L", border: int = QUIET_ZONE) -> list[list[bool]]:
    """The module matrix (True = dark) including a quiet zone of ``border`` modules."""
    code = qrcode.QRCode(error_correction=_LEVELS[level], border=border)
    code.add_data(payload)
    code.make(fit=True)
    return [list(row) for row in code.get_matrix()]


def size_needed(payload: str, level: str = "L", *, compact: bool = False) -> tuple[int, int]:
    """(columns, rows) the half-block (or, ``compact``, sextant) rendering takes."""
    side = len(matrix(payload, level))
    if compact:
        return (side + 1) // 2, (side + 2) // 3
    return side, (side + 1) // 2


def _sextant(bits: int) -> str:
    """The character for six modules, bit i set when module i is dark (0 top-left,
    1 top-right, 2 middle-left, 3 middle-right, 4 bottom-left, 5 bottom-right). The
    block lists 60 patterns in this bit order; the four others were already in Unicode:
    empty, full, left half (0+2+4), right half (1+3+5)."""
    if bits == 0:
        return " "
    if bits == 0b111111:
        return "█"
    if bits == 0b010101:
        return "▌"
    if bits == 0b101010:
        return "▐"
    return chr(0x1FB00 + bits - 1 - (bits > 0b010101) - (bits > 0b101010))


def sextants(modules: list[list[bool]]) -> list[str]:
    """One string per terminal row, 2x3 modules per character, dark modules as ink."""
    width = len(modules[0]) if modules else 0
    rows = [list(r) + [False] * (width % 2) for r in modules]
    while len(rows) % 3:
        rows.append([False] * (width + width % 2))
    out = []
    for top in range(0, len(rows), 3):
        band = rows[top : top + 3]
        line = []
        for x in range(0, len(band[0]), 2):
            bits = 0
            for i, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1))):
                if band[dy][x + dx]:
                    bits |= 1 << i
            line.append(_sextant(bits))
        out.append("".join(line))
    return out


def half_blocks(modules: list[list[bool]]) -> list[str]:
    """One string per terminal row, dark modules as ink."""
    rows = list(modules)
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))
    return [
        "".join(_HALF[(top, bottom)] for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(rows[0::2], rows[1::2], strict=True)
    ]


def terminal_lines(payload: str, *, compact: bool = False, level: str = "L") -> list[str]:
    """The QR's rows of characters: half-blocks, or sextants when ``compact``."""
    modules = matrix(payload, level)
    return sextants(modules) if compact else half_blocks(modules)


def terminal_text(payload: str, *, color: bool, compact: bool = False, level: str = "L") -> str:
    """The QR as text for a terminal: coloured black-on-white when ``color``."""
    lines = terminal_lines(payload, compact=compact, level=level)
    if color:
        lines = [f"{_BLACK_ON_WHITE}{line}{_RESET}" for line in lines]
    return "\n".join(lines)


def png(payload: str, scale: int = 8, level: str = "L") -> bytes:
    """A black-on-white PNG of the QR (1-bit greyscale, no imaging library needed)."""
    modules = matrix(payload, level, border=4)
    dark_bits, light_bits = "0" * scale, "1" * scale  # 1-bit greyscale: 0 is black
    raw = bytearray()
    for row in modules:
        bits = "".join(dark_bits if dark else light_bits for dark in row)
        bits += "1" * (-len(bits) % 8)  # pad the last byte with white
        line = b"\0" + int(bits, 2).to_bytes(len(bits) // 8, "big")  # filter type: none
        raw.extend(line * scale)
    side = len(modules) * scale
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


@functools.lru_cache(maxsize=4)
def png_data_url(payload: str) -> str:
    """The PNG as a data URL; kept for the last few payloads (a runner's /qrcode and
    its qr_code webhook ask for the same one)."""
    return "data:image/png;base64," + base64.b64encode(png(payload)).decode("ascii")
