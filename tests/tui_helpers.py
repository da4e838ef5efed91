"""Reading what the terminal app actually draws: the screen as text, and the QR code as
pixels decoded by a real QR decoder (zxing-cpp)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from rich.color import Color
from textual.app import App
from textual.screen import Screen
from textual.strip import Strip

from tests.qrdecode import cell_dark, decode_pixels


def top_screen(app: App[Any]) -> Screen[Any]:
    """The screen on top now. A call rather than ``app.screen`` for checks made after
    keys change screens: mypy keeps an ``isinstance(app.screen, X)`` narrowing across
    the awaits, and would call the next ``app.screen is home`` impossible."""
    return app.screen


ScreenT = TypeVar("ScreenT", bound=Screen[Any])


def screen_as(app: App[Any], kind: type[ScreenT]) -> ScreenT:
    """The screen on top, checked to be a ``kind`` and typed as one: a variable narrowed
    by isinstance would be widened back by a later ``top_screen(app) is variable``."""
    screen = app.screen
    assert isinstance(screen, kind), f"{type(screen).__name__} on top, not {kind.__name__}"
    return screen


def _strips(app: App[Any]) -> list[Strip]:
    return app.screen._compositor.render_strips()


def screen_text(app: App[Any]) -> str:
    """Every cell of the active screen, as plain text."""
    return "\n".join(strip.text for strip in _strips(app))


def _luma(color: Color | None, default: int) -> int:
    if color is None:
        return default
    r, g, b = color.get_truecolor()
    return int(0.299 * r + 0.587 * g + 0.114 * b)


def screen_pixels(app: App[Any]) -> list[list[int]]:
    """The screen as a greyscale image, two pixels per cell (a half-block cell is two
    modules): the colour of each half as the terminal paints it. Default colours count
    as a dark theme (light text on a dark background)."""
    return screen_cell_pixels(app, (1, 2))


def screen_cell_pixels(app: App[Any], cell: tuple[int, int] = (6, 12)) -> list[list[int]]:
    """The screen as a greyscale image drawn as a terminal does: each cell ``cell``
    pixels (about 1:2), its half-blocks or sextants in their fg/bg colours."""
    width, height = cell
    image: list[list[int]] = []
    for strip in _strips(app):
        band: list[list[int]] = [[] for _ in range(height)]
        for segment in strip:
            text, style = segment.text, segment.style
            fg = _luma(style.color if style else None, 230)
            bg = _luma(style.bgcolor if style else None, 20)
            if style is not None and style.reverse:
                fg, bg = bg, fg
            for char in text:
                for y in range(height):
                    for dx in range(width):
                        band[y].append(fg if cell_dark(char, y / height, dx / width) else bg)
        image.extend(band)
    return image


def decode_screen_cells(app: App[Any]) -> str | None:
    """The payload of the QR on screen, half-blocks or sextants alike."""
    pixels = [[0 if v < 128 else 255 for v in row] for row in screen_cell_pixels(app)]
    return decode_pixels(pixels, scale=1)


def decode_screen_qr(app: App[Any]) -> str | None:
    """The payload of the QR code visible on the active screen, or None."""
    pixels = [[0 if v < 128 else 255 for v in row] for row in screen_pixels(app)]
    return decode_pixels(pixels, scale=4)


async def until(
    pilot: Any, predicate: Callable[[], Any], timeout: float = 20.0, what: str = ""
) -> Any:
    """Let the app run until ``predicate()`` is truthy (the app keeps processing
    messages and workers meanwhile); fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        await pilot.pause(0.05)
    raise AssertionError(f"{what or 'condition'} not met within {timeout} s (last: {last!r})")


async def in_thread(fn: Callable[[], Any]) -> Any:
    """Run a blocking call (a CLI process, a store query) without stopping the app."""
    return await asyncio.get_running_loop().run_in_executor(None, fn)
