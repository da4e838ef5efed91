"""Pairing by phone number and the webhook outbox on the session screen, for real: a
sim runner under a real supervisord, a real HTTP receiver on loopback that is down
first (so events are dead-lettered) and up after. The sim connector answers
`POST /pair-phone` the way neonize does (a deterministic 8-character code instead of
one from WhatsApp, which cannot be reached here), so the dialog runs end to end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from ecosystem.models import NewSession
from ecosystem.orchestrator import Orchestrator
from runner.connectors.sim_codes import sim_pair_code
from tests.conftest import Env
from tests.receiver import Receiver
from tests.test_tui_health import env_with, notes
from tests.tui_helpers import in_thread, screen_text, until
from tui.app import make_app
from tui.dialogs.pair import PairDialog, big
from tui.palette import session_commands
from tui.screens.session import SessionScreen

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.down()


def test_pair_by_phone_and_replay_dead_webhooks(
    make_env: Callable[..., Env], receiver: Receiver
) -> None:
    receiver.down()  # deliveries fail until it comes back on the same port
    _env, settings = env_with(make_env, webhook_retry_schedule="0,0.2", sim_qr_seconds=120)
    orch = Orchestrator(settings)
    try:
        orch.create(NewSession(name="alpha", connector="sim", webhook_url=receiver.url))
    finally:
        orch.close()
    app = make_app(settings, refresh_seconds=0.3, blink=False)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.snapshot and app.snapshot.view("alpha"), timeout=30)
            await pilot.press("enter")
            screen = app.screen
            assert isinstance(screen, SessionScreen)

            # 80x24 is too small for the QR: the screen offers the pairing code instead
            await until(pilot, lambda: "press p to link with the phone number" in screen_text(app))

            # the events the receiver missed are dead letters; w sends them again
            await until(
                pilot,
                lambda: screen.deliveries and screen.deliveries["dead"] >= 1,
                what="dead letters counted",
            )
            dead = screen.deliveries["dead"]  # type: ignore[index]
            await pilot.press("q")  # the details: the config panel has the counts
            await until(pilot, lambda: f"dead        {dead} · w replays" in screen_text(app))
            receiver.up()
            await pilot.press("w")
            await until(pilot, lambda: f"alpha webhooks: {dead} dead-lettered" in notes(app))
            await until(
                pilot,
                lambda: screen.deliveries == {"pending": 0, "delivered": dead, "dead": 0},
                what=f"replayed and delivered ({screen.deliveries})",
            )
            assert receiver.of("qr_code"), "the QR event reached the receiver"

            # p: the number is checked as it is typed, nothing is asked for until it is valid
            titles = [title for title, _help, _run in session_commands(app, "alpha")]
            assert "Pair alpha by phone number" in titles
            assert "Replay dead webhooks of alpha" in titles
            await pilot.press("p")
            dialog = app.screen
            assert isinstance(dialog, PairDialog)
            hint = dialog.query_one("#phone-error")
            await pilot.press(*"12ab")
            assert hint.has_class("-error") and "'ab'" in str(hint.render())
            await pilot.press("enter")
            await pilot.pause()
            assert dialog.pairing is None and not dialog.busy
            await pilot.press(*["backspace"] * 4, *"011988887777")
            assert "starts with 0" in str(hint.render())
            await pilot.press(*["backspace"] * 12, *"+55 11 98888-7777")
            assert not hint.has_class("-error")

            # enter: the code, large, with how long it is valid
            await pilot.press("enter")
            pairing = await until(pilot, lambda: dialog.pairing, what="a pairing code")
            assert pairing.code == sim_pair_code("alpha", "5511988887777")
            assert pairing.phone == "5511988887777"
            await until(pilot, lambda: str(dialog.query_one("#code").render()) == big(pairing.code))
            steps = str(dialog.query_one("#steps").render())
            assert "Link with phone number instead" in steps and "valid for 2:5" in steps

            # the phone types it (the sim's scan stands for that): linked to that number,
            # and the dialog closes by itself
            await in_thread(lambda: app.orch.sim_scan("alpha"))
            await until(pilot, lambda: app.screen is screen, what="the dialog closed")
            await until(pilot, lambda: "alpha: connected as 5511988887777" in notes(app))

            # linked: p says why there is nothing to pair, in one line, and opens nothing
            await pilot.press("p")
            await until(
                pilot,
                lambda: (
                    "alpha cannot take a pairing code now: it is already linked to 5511988887777"
                    in notes(app)
                ),
            )
            assert app.screen is screen
            titles = [title for title, _help, _run in session_commands(app, "alpha")]
            assert "Pair alpha by phone number" not in titles

    asyncio.run(scenario())
