"""The session screen shows the bot's last reply and its last error (read from the
store while the screen shows, as the webhook counts are)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ecosystem.conversations import BotActivity
from ecosystem.liveview import Snapshot
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import make_settings
from tests.tui_fixed import NOW, FixedPoller, fixed_snapshot
from tests.tui_helpers import screen_text, until
from tui.app import ZapvisorApp
from tui.cli.output import session_details
from tui.screens.session import SessionScreen

ERROR = "openai: 401 Unauthorized: check the key (zapvisor secret cliente-001 openai)"


class _BotPoller(FixedPoller):
    """cliente-001 with its bot on: a reply 5 minutes ago, a failure 2 minutes ago."""

    def tick(self) -> Snapshot:
        snap = fixed_snapshot()
        views = []
        for v in snap.views:
            if v.name == "cliente-001":
                config = {"enabled": True, "model": "gpt-4o-mini"}
                v = replace(v, session=v.session.model_copy(update={"ai_config": config}))
            views.append(v)
        return replace(snap, views=tuple(views))

    def bot_activity(self, name: str) -> BotActivity | None:
        assert name == "cliente-001"
        return BotActivity(
            last_reply_at=NOW - timedelta(minutes=5),
            last_error=ERROR,
            last_error_at=NOW - timedelta(minutes=2),
        )


def test_the_session_screen_shows_the_last_ai_reply_and_error(tmp_path: Path) -> None:
    orch = Orchestrator(make_settings(home=tmp_path / "home", host_id="vps-sp-01"))
    app = ZapvisorApp(orch, poller=_BotPoller(orch), clock=lambda: NOW, blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.snapshot is not None, what="the first refresh")
            app.open_session("cliente-001", "details")
            await until(pilot, lambda: isinstance(app.screen, SessionScreen), what="screen")
            text = await until(
                pilot,
                lambda: "ai error" in (t := screen_text(app)) and t,
                what="the bot's lines",
            )
            assert "ai reply    5m00s ago" in text, text
            assert "2m00s ago: openai: 401 Unauthori" in text, text  # cut to the panel

    asyncio.run(scenario())


def test_show_prints_the_bots_key_source_last_reply_and_last_error() -> None:
    """`zapvisor show` (text): where the key comes from, the last reply and the last
    error with how long ago each was; nothing of the bot while it is off."""
    now = datetime.now(UTC)
    view = fixed_snapshot().views[0]
    on = view.session.model_copy(update={"ai_config": {"enabled": True}})
    bot = BotActivity(
        last_reply_at=now - timedelta(minutes=5),
        last_error=ERROR,
        last_error_at=now - timedelta(minutes=2),
    )
    text = session_details(replace(view, session=on, bot=bot, ai_key="OPENAI_KEY"))
    lines = dict(line.strip().split("  ", 1) for line in text.splitlines())
    assert lines["ai key"] == "OPENAI_KEY"
    assert lines["ai reply"] == "5m00s ago"
    assert lines["ai error"] == f"2m00s ago: {ERROR}"
    off = session_details(replace(view, bot=bot, ai_key="OPENAI_KEY"))
    assert "ai reply" not in off and "ai error" not in off
