"""The log pane opened with `l` from the sessions table shows the newest lines and
follows the file as it grows, as it does from the session screen (real app, a real
runner's log file)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from tests.conftest import Env, wait_for
from tests.test_tui_sessions import _created, _cursor_to, _home
from tests.tui_helpers import screen_as, until
from tui.app import make_app
from tui.screens.session import SessionScreen
from tui.widgets.log_pane import LogPane

pytestmark = pytest.mark.e2e


def _line(n: int) -> str:
    """A runner's JSON line, wider than the pane (as real ones are)."""
    return json.dumps(
        {
            "ts": "2025-01-01T00:00:00+00:00",
            "level": "info",
            "session": "alpha",
            "msg": f"line {n} " + "x" * 150,
            "event": "status",
        }
    )


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_l_opens_the_log_at_its_end_and_follows(make_env: Any, size: tuple[int, int]) -> None:
    env: Env = make_env(ZAPVISOR_SIM_QR_SECONDS="600")
    _created(env, ["alpha"])
    log = env.home / "logs" / "wa-alpha.log"
    # the runner's own first lines (its QR, its status, its lease) may come just after
    # its /health answered: they must be in before the test's, which the pane is to end
    # with (and its QR does not rotate, writing a line, while the test runs)
    wait_for(lambda: {"waiting_scan", "lease_taken"} <= set(re.findall(r"\w+", log.read_text())))
    with log.open("a") as fh:
        fh.writelines(_line(n) + "\n" for n in range(400))
    app = make_app(env.settings(), refresh_seconds=0.3, blink=False)

    async def scenario() -> None:
        async with app.run_test(size=size) as pilot:
            home = await _home(pilot, app, ["alpha"])
            await _cursor_to(pilot, home, "alpha")
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, SessionScreen))
            pane = screen_as(app, SessionScreen).query_one(LogPane)

            def at_end(text: str) -> bool:
                return bool(pane.lines) and text in pane.lines[-1] and pane.is_vertical_scroll_end

            await until(pilot, lambda: at_end("line 399"), what="the newest line, in view")
            assert pane.has_focus
            # the pane shrinks after the lines came (the panels above grow as the
            # session's facts arrive, or the terminal gets smaller): still at the end
            await pilot.resize_terminal(size[0], size[1] - 4)
            await until(pilot, lambda: at_end("line 399"), what="the end kept on a shrink")
            with log.open("a") as fh:
                fh.write(_line(400) + "\n")
            await until(pilot, lambda: at_end("line 400"), what="a new line, followed")

            # scrolled up to read: new lines do not pull the view away; end follows again
            await pilot.press("pageup")
            assert not pane.is_vertical_scroll_end
            top = pane.scroll_y
            with log.open("a") as fh:
                fh.write(_line(401) + "\n")
            await until(pilot, lambda: "line 401" in pane.lines[-1], what="line 401 read")
            await pilot.pause(0.2)
            assert pane.scroll_y == top, "the operator's reading place is kept"
            await pilot.press("end")
            with log.open("a") as fh:
                fh.write(_line(402) + "\n")
            await until(pilot, lambda: at_end("line 402"), what="following again")

    asyncio.run(scenario())
