"""The session screen's QR: drawn whole and scannable when it fits (decoded off the
screen's cells and colours, as a phone would see them on a dark theme), never drawn
cropped when it does not."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.tui_fixed import fixed_app, fixed_snapshot
from tests.tui_helpers import decode_screen_qr, screen_text, until
from tui.screens.session import SessionScreen
from tui.widgets.qr import QRCode


def _on_qr_screen(home: Path, size: tuple[int, int]) -> tuple[str | None, str, bool]:
    app = fixed_app(home)

    async def scenario() -> tuple[str | None, str, bool]:
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.snapshot is not None, what="the first refresh")
            app.open_session("cliente-002", "qr")
            await until(
                pilot,
                lambda: isinstance(app.screen, SessionScreen) and app.screen.query(QRCode),
                what="the QR screen",
            )
            await pilot.pause()
            fits = app.screen.query_one(QRCode).fits
            return decode_screen_qr(app), screen_text(app), fits

    return asyncio.run(scenario())


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
