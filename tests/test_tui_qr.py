"""The session screen's QR: drawn whole and scannable when it fits (decoded off the
screen's cells and colours, as a phone would see them on a dark theme), never drawn
cropped when it does not."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.tui_fixed import fixed_app, fixed_snapshot
from tests.tui_helpers import decode_screen_cells, decode_screen_qr, screen_text, until
from tui.screens.session import SessionScreen
from tui.widgets.qr import QRCode


def _on_qr_screen(home: Path, size: tuple[int, int]) -> tuple[str | None, str, bool]:
    app = fixed_app(home)

    async def scenario() -> tuple[str | None, str, bool]:
        async with app.run_test(size=size) as pilot:
            qr = await _qr_screen(app, pilot)
            await pilot.pause()
            return decode_screen_qr(app), screen_text(app), qr.fits

    return asyncio.run(scenario())


async def _qr_screen(app: Any, pilot: Any) -> QRCode:
    """Open cliente-002's QR screen once the first refresh is in; its QR widget."""
    await until(pilot, lambda: app.snapshot is not None, what="the first refresh")
    app.open_session("cliente-002", "qr")
    await until(
        pilot,
        lambda: isinstance(app.screen, SessionScreen) and app.screen.query(QRCode),
        what="the QR screen",
    )
    qr: QRCode = app.screen.query_one(QRCode)
    await until(pilot, lambda: qr.payload is not None, what="the QR payload")
    return qr


def test_the_qr_as_drawn_decodes_to_the_payload(tmp_path: Path) -> None:
    payload = fixed_snapshot().view("cliente-002").session.qr_payload  # type: ignore[union-attr]
    assert payload and len(payload) == 265
    decoded, _text, fits = _on_qr_screen(tmp_path / "home", (100, 40))
    assert fits
    assert decoded == payload


def test_a_qr_that_does_not_fit_says_the_size_it_needs(tmp_path: Path) -> None:
    decoded, text, fits = _on_qr_screen(tmp_path / "home", (80, 24))
    assert not fits
    assert decoded is None
    assert "needs 61x31 cells" in text
    assert "at least 80x35" in text
    assert "zapvisor qr cliente-002 --png qr.png" in text
    assert "press p to link with the phone number instead" in text  # the pairing code
    assert "▀" not in text and "▄" not in text  # no part of a cropped code


def test_the_compact_qr_fits_80x24_and_decodes(tmp_path: Path) -> None:
    """`c` draws the code with sextants (2x3 modules per cell): a WhatsApp code fits a
    classic 80x24 SSH terminal and, drawn as the terminal draws it, decodes. The screen
    says how to go back to half-blocks if the font has no sextants."""
    payload = fixed_snapshot().view("cliente-002").session.qr_payload  # type: ignore[union-attr]
    app = fixed_app(tmp_path / "home")

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            qr = await _qr_screen(app, pilot)
            await until(
                pilot,
                lambda: "Press c for the compact QR" in screen_text(app),
                what="the offer of the compact QR",
            )
            assert not qr.fits
            await pilot.press("c")
            await until(pilot, lambda: qr.compact and qr.fits, what="the compact QR")
            assert qr.needed == (31, 21)
            await until(
                pilot, lambda: decode_screen_cells(app) == payload, what="a code that decodes"
            )
            await until(
                pilot,
                lambda: "c: half-blocks if broken" in screen_text(app),
                what="the way back",
            )
            await pilot.press("c")  # back: too big again, says so
            await until(
                pilot, lambda: "needs 61x31 cells" in screen_text(app), what="the size it needs"
            )
            assert not qr.compact

    asyncio.run(scenario())


def test_the_compact_qr_can_be_the_default(tmp_path: Path) -> None:
    app = fixed_app(tmp_path / "home", qr_compact=True)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            qr = await _qr_screen(app, pilot)
            assert qr.compact
            await until(pilot, lambda: decode_screen_cells(app) is not None, what="a code")

    asyncio.run(scenario())
