"""The terminal QR and the PNG decode back to their payload with a real decoder."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecosystem import qr
from runner.connectors.sim_codes import sim_payload
from tests.qrdecode import decode_cells, decode_half_blocks, decode_png


def whatsapp_like(seed: int) -> str:
    def rnd(n: int) -> str:
        return base64.b64encode(os.urandom(n)).decode()

    return f"2@{rnd(96)},{rnd(32)},{rnd(32)},{rnd(32)}"


def test_a_whatsapp_sized_payload_needs_61_by_31_cells() -> None:
    payload = whatsapp_like(0)
    assert len(payload) == 265
    assert qr.size_needed(payload) == (61, 31)
    assert qr.size_needed(payload, "M") == (69, 35)
    lines = qr.terminal_text(payload, color=False).splitlines()
    assert len(lines) == 31 and {len(line) for line in lines} == {61}


@pytest.mark.parametrize("color", [False, True])
def test_terminal_text_decodes(color: bool) -> None:
    payload = sim_payload("cliente-001", 3)
    text = qr.terminal_text(payload, color=color)
    if color:
        assert "\x1b[" in text  # black on white, whatever the terminal's theme
    assert decode_half_blocks(text) == payload


@settings(max_examples=15, deadline=None)
@given(st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=300))
def test_any_payload_round_trips(payload: str) -> None:
    assert decode_half_blocks(qr.terminal_text(payload, color=False)) == payload


def test_png_decodes() -> None:
    payload = whatsapp_like(1)
    assert decode_png(qr.png(payload)) == payload
    url = qr.png_data_url(payload)
    assert url.startswith("data:image/png;base64,")
    assert decode_png(base64.b64decode(url.split(",", 1)[1])) == payload


def test_sim_payloads_are_deterministic_and_rotate() -> None:
    assert sim_payload("a", 0) == sim_payload("a", 0)
    assert sim_payload("a", 0) != sim_payload("a", 1) != sim_payload("b", 1)
    assert len(sim_payload("a", 0)) == 265


def test_a_whatsapp_sized_payload_needs_31_by_21_compact_cells() -> None:
    """Sextants, 2x3 modules per cell: the same code fits 80x24 with room for a line."""
    payload = whatsapp_like(0)
    assert qr.size_needed(payload, compact=True) == (31, 21)
    lines = qr.terminal_text(payload, color=False, compact=True).splitlines()
    assert len(lines) == 21 and {len(line) for line in lines} == {31}
    used = {c for line in lines for c in line}
    assert used <= {" ", "█", "▌", "▐"} | {chr(c) for c in range(0x1FB00, 0x1FB3C)}


@pytest.mark.parametrize("color", [False, True])
def test_compact_text_decodes_as_a_terminal_draws_it(color: bool) -> None:
    """Rasterised as a terminal draws it (cells about twice as tall as wide, so the
    modules come out 3:4), a real decoder reads it."""
    for seed in range(3):
        payload = whatsapp_like(seed)
        text = qr.terminal_text(payload, color=color, compact=True)
        assert decode_cells(text) == payload
    # the same rasteriser reads the half-blocks (square modules) too
    assert decode_cells(qr.terminal_text(payload, color=color)) == payload


@settings(max_examples=15, deadline=None)
@given(st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=300))
def test_any_payload_round_trips_compact(payload: str) -> None:
    assert decode_cells(qr.terminal_text(payload, color=False, compact=True)) == payload


def test_every_sextant_pattern_has_its_own_character() -> None:
    import unicodedata

    chars = [qr._sextant(bits) for bits in range(64)]
    assert len(set(chars)) == 64
    for bits, char in enumerate(chars):
        if char not in " █▌▐":
            cells = "".join(str(i + 1) for i in range(6) if bits >> i & 1)
            assert unicodedata.name(char) == f"BLOCK SEXTANT-{cells}"
