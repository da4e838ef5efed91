"""How the main screens look, pinned as SVG screenshots.

The data is fixed (tests/tui_fixed.py: a constant snapshot in place of the store,
supervisord and psutil, a frozen clock, UTC) so the pictures are the same on every run;
how the screens behave against a real supervisord is tested in tests/test_tui_*.py.
Update them after an intended change with `pytest tests/test_tui_snapshots.py
--snapshot-update`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tui_fixed import fixed_app, fleet_app


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_sessions_screen(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(fixed_app(tmp_path / "home"), terminal_size=(80, 24))


def test_session_screen_with_its_qr(snap_compare: Any, tmp_path: Path) -> None:
    # 100x40: a 265-character WhatsApp payload needs 61x31 cells; at 80x24 the screen
    # says so instead (tested in test_tui_qr.py).
    app = fixed_app(tmp_path / "home")
    assert snap_compare(app, press=["down", "enter"], terminal_size=(100, 40))


def test_create_form_with_an_inline_error(snap_compare: Any, tmp_path: Path) -> None:
    app = fixed_app(tmp_path / "home")
    assert snap_compare(app, press=["n", *"Bad Name"], terminal_size=(80, 24))


def test_confirm_dialog_for_marked_rows(snap_compare: Any, tmp_path: Path) -> None:
    app = fixed_app(tmp_path / "home")
    assert snap_compare(app, press=["space", "space", "d"], terminal_size=(80, 24))


def test_alerts_view(snap_compare: Any, tmp_path: Path) -> None:
    # two raised (critical first), one cleared within the day; the one cleared 29 h ago
    # is not listed
    assert snap_compare(fixed_app(tmp_path / "home"), press=["a"], terminal_size=(80, 24))


def test_session_screen_of_a_parked_session(snap_compare: Any, tmp_path: Path) -> None:
    # the health monitor's facts: restarts and why, the last exit, parked and how to
    # start it again; the webhook outbox's counts with the replay key
    app = fixed_app(tmp_path / "home")
    assert snap_compare(app, press=["down", "down", "enter"], terminal_size=(80, 24))


def test_sessions_of_three_hosts_one_silent(snap_compare: Any, tmp_path: Path) -> None:
    # a HOST column once there is more than one host; the silent host's rows greyed
    assert snap_compare(fleet_app(tmp_path / "home"), terminal_size=(80, 24))


def test_hosts_screen(snap_compare: Any, tmp_path: Path) -> None:
    # h: which hosts answer (and since when not), sessions of how many, load, version
    assert snap_compare(fleet_app(tmp_path / "home"), press=["h"], terminal_size=(80, 24))
