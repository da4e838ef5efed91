"""The config form's bot fields, driven by keys: each field is checked by the models as
it is typed, Save is refused while one is wrong, the raw JSON and the fields stay in
step, and the line saying where the key comes from never shows the key. The form talks
to a real orchestrator over a real store (SQLite); the saving test also has a real
supervisord, which `configure` reaches to show the session it changed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.widgets import Input, Select, Switch, TextArea

from ecosystem.models import NewSession, Session
from ecosystem.orchestrator import Orchestrator
from ecosystem.settings import make_settings
from tests.conftest import Env
from tests.tui_helpers import screen_text, until
from tui.dialogs import bot_spec
from tui.dialogs.config import ConfigForm
from tui.widgets.bot_field import BotField

OPENAI_KEY = "sk-host-0123456789abcdef"
GEMINI_KEY = "AIza-session-fedcba9876543210"


class _FormApp(App[None]):
    """Only the form, over ``session``; ``closed`` gets what it was dismissed with."""

    CSS_PATH = str(Path(__file__).parents[1] / "tui" / "app.tcss")

    def __init__(self, orch: Orchestrator, session: Session) -> None:
        super().__init__()
        self.orch, self.session = orch, session
        self.closed: list[list[str] | None] = []

    def on_mount(self) -> None:
        self.push_screen(ConfigForm(self.orch, self.session, blink=False), self.closed.append)

    @property
    def form(self) -> ConfigForm:
        screen = self.screen
        assert isinstance(screen, ConfigForm), type(screen).__name__
        return screen


def _session(orch: Orchestrator, name: str = "bot-1", **config: Any) -> Session:
    """A session row (its runner is not needed to edit its config)."""
    orch.paths.ensure()
    orch.store.create_session(
        NewSession(name=name, connector="sim"),
        host=orch.host_id,
        ports=orch.ports,
        exclude_ports=set(),
        max_sessions=10,
        actor="test",
    )
    if config:
        orch.store.update_session(name, config, actor="test", action="configure")
    return orch.store.get_session(name)


async def _type(pilot: Any, app: _FormApp, selector: str, text: str) -> None:
    """Empty the box and type ``text`` into it, key by key."""
    box = app.form.query_one(selector, Input)
    box.focus()
    box.value = ""
    await pilot.press(*text) if text else None
    await pilot.pause()


def _error(app: _FormApp, key: str) -> str:
    return str(app.form.query_one(f"#{key}-error").render())


@pytest.mark.e2e
def test_a_bad_temperature_is_refused_under_its_field_and_the_fixed_form_saves_typed_values(
    make_env: Any,
) -> None:
    env: Env = make_env()
    orch = Orchestrator(env.settings())
    session = _session(orch, timing_config={"sim": {"allocate_mb": 1}})
    app = _FormApp(orch, session)

    async def scenario() -> None:
        async with app.run_test(size=(100, 50)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ConfigForm), what="the form")
            await _type(pilot, app, "#ai_config-temperature-box", "5")
            assert _error(app, "ai_config-temperature") == (
                "Input should be less than or equal to 2"
            )
            assert "Input should be less than or equal to 2" in screen_text(app)
            await pilot.press("ctrl+s")
            assert isinstance(app.screen, ConfigForm) and app.closed == []
            assert "not saved: fix ai_config first" in _error(app, "form")
            assert orch.store.get_session("bot-1").ai_config == {}

            # letters are the model's to refuse too, in its words
            await _type(pilot, app, "#ai_config-max_tokens-box", "many")
            assert _error(app, "ai_config-max_tokens") == "Input should be a valid integer"
            await _type(pilot, app, "#ai_config-max_tokens-box", "300")
            assert _error(app, "ai_config-max_tokens") == ""

            # fixed, and the rest filled in: saved with the models' types
            await _type(pilot, app, "#ai_config-temperature-box", "1")
            assert _error(app, "ai_config-temperature") == ""
            app.form.query_one("#ai_config-enabled-box", Switch).toggle()
            app.form.query_one("#ai_config-provider-box", Select).value = "gemini"
            await _type(pilot, app, "#ai_config-history-box", "4")
            await _type(pilot, app, "#timing_config-reply_delay-0", "2")
            await _type(pilot, app, "#timing_config-reply_delay-1", "5.5")
            await _type(pilot, app, "#timing_config-quiet_hours-start", "22:00")
            assert _error(app, "timing_config-quiet_hours") == "end: Field required"
            await _type(pilot, app, "#timing_config-quiet_hours-end", "7:00")
            assert "end: must be a time of day as HH:MM" in _error(app, "timing_config-quiet_hours")
            await _type(pilot, app, "#timing_config-quiet_hours-end", "07:00")
            await _type(pilot, app, "#timing_config-quiet_hours-tz", "America/Sao_Paulo")
            await _type(pilot, app, "#timing_config-cooldown_seconds-box", "60")
            await _type(pilot, app, "#timing_config-outbound_per_minute-box", "30")
            app.form.query_one("#timing_config-typing-box", Switch).toggle()
            await pilot.pause()
            assert not [f.id for f in app.form.query(BotField) if f.has_problem]
            await pilot.press("ctrl+s")
            await until(pilot, lambda: app.closed, timeout=30, what="saved")

        assert app.closed == [["ai_config", "timing_config"]]
        saved = orch.store.get_session("bot-1")
        assert saved.ai_config == {
            "enabled": True,
            "provider": "gemini",
            "temperature": 1.0,
            "max_tokens": 300,
            "history": 4,
        }
        assert isinstance(saved.ai_config["temperature"], float)
        assert saved.timing_config == {
            "reply_delay": [2.0, 5.5],
            "typing": False,
            "quiet_hours": {"start": "22:00", "end": "07:00", "tz": "America/Sao_Paulo"},
            "cooldown_seconds": 60.0,
            "outbound_per_minute": 30,
            "sim": {"allocate_mb": 1},  # no field shows it; kept as it was
        }
        assert isinstance(saved.timing_config["cooldown_seconds"], float)

    asyncio.run(scenario())


def test_the_raw_json_and_the_fields_stay_in_step(tmp_path: Path) -> None:
    orch = Orchestrator(make_settings(home=tmp_path / "home", host_id="h1"))
    session = _session(orch, ai_config={"enabled": True, "model": "gpt-4o-mini"})
    app = _FormApp(orch, session)

    def raw(config: str) -> dict[str, Any]:
        return dict(json.loads(app.form.query_one(f"#{config}", TextArea).text))

    async def scenario() -> None:
        async with app.run_test(size=(100, 50)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ConfigForm), what="the form")
            form = app.form
            assert form.query_one("#ai_config-model-box", Input).value == "gpt-4o-mini"
            await _type(pilot, app, "#ai_config-temperature-box", "0.3")
            await _type(pilot, app, "#timing_config-reply_delay-0", "0")
            await _type(pilot, app, "#timing_config-reply_delay-1", "2")

            # form -> raw: what was typed, as the store would keep it
            await pilot.press("ctrl+r")
            assert form.raw and form.query_one("#ai_config", TextArea).display
            assert raw("ai_config") == {"enabled": True, "model": "gpt-4o-mini", "temperature": 0.3}
            assert raw("timing_config") == {"reply_delay": [0.0, 2.0]}
            assert '"reply_delay": [\n    0.0,' in form.query_one("#timing_config", TextArea).text

            # raw -> form: the fields show what was written there
            ai = {"enabled": False, "model": "llama3.1", "history": 2, "system_prompt": "Oi.\nSó."}
            form.query_one("#ai_config", TextArea).text = json.dumps(ai)
            form.query_one("#timing_config", TextArea).text = '{"mark_read": true}'
            await pilot.press("ctrl+r")
            assert not form.raw
            assert form.query_one("#ai_config-model-box", Input).value == "llama3.1"
            assert form.query_one("#ai_config-history-box", Input).value == "2"
            assert form.query_one("#ai_config-temperature-box", Input).value == ""
            assert form.query_one("#ai_config-system_prompt-box", TextArea).text == "Oi.\nSó."
            assert form.query_one("#ai_config-enabled-box", Switch).value is False
            assert form.query_one("#timing_config-mark_read-box", Switch).value is True
            assert form.query_one("#timing_config-reply_delay-0", Input).value == ""
            assert form.form_value("ai_config") == ai

            # raw the model refuses: it stays raw, saying why, until it is fixed
            await pilot.press("ctrl+r")
            form.query_one("#ai_config", TextArea).text = '{"temperature": 9}'
            await pilot.press("ctrl+r")
            assert form.raw and form.query_one("#raw", Switch).value is True
            assert "ai_config.temperature: Input should be less than" in _error(app, "ai_config")
            assert "fix the raw JSON first" in _error(app, "form")
            form.query_one("#ai_config", TextArea).text = '{"temperature": 1.5}'
            await pilot.press("ctrl+r")
            assert not form.raw
            assert form.query_one("#ai_config-temperature-box", Input).value == "1.5"
            await pilot.press("escape")
            await until(pilot, lambda: app.closed, what="cancelled")

        assert app.closed == [None]
        assert orch.store.get_session("bot-1").ai_config == session.ai_config

    asyncio.run(scenario())


def test_the_key_source_line_names_where_the_key_comes_from_never_the_key(
    tmp_path: Path,
) -> None:
    orch = Orchestrator(make_settings(home=tmp_path / "home", host_id="h1", openai_key=OPENAI_KEY))
    session = _session(orch, ai_config={"enabled": True})
    orch.set_ai_key("bot-1", "gemini", GEMINI_KEY)
    app = _FormApp(orch, session)
    seen: list[str] = []

    def line() -> str:
        text = str(app.form.query_one("#key-source").render())
        seen.append(screen_text(app))
        return text

    async def scenario() -> None:
        async with app.run_test(size=(100, 50)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ConfigForm), what="the form")
            await until(pilot, lambda: "looking" not in line(), what="the key's source")
            assert line() == "openai key: host OPENAI_KEY"
            app.form.query_one("#ai_config-provider-box", Select).value = "gemini"
            await until(pilot, lambda: line().startswith("gemini"), what="gemini's key")
            assert line() == "gemini key: session secret (secrets/bot-1.gemini-key)"
            await pilot.press("ctrl+r")
            seen.append(app.form.query_one("#ai_config", TextArea).text)

    asyncio.run(scenario())

    # no key anywhere: it says so, and how to give one
    bare = Orchestrator(make_settings(home=tmp_path / "bare", host_id="h1"))
    app = _FormApp(bare, _session(bare, ai_config={"enabled": True}))

    async def missing() -> None:
        async with app.run_test(size=(100, 50)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, ConfigForm), what="the form")
            await until(pilot, lambda: "missing" in line(), what="no key")
            assert line() == (
                "openai key: missing — `zapvisor secret bot-1 openai`, "
                "or OPENAI_KEY in the host's settings"
            )

    asyncio.run(missing())
    shown = "\n".join(seen)
    assert OPENAI_KEY not in shown and GEMINI_KEY not in shown
    assert "sk-" not in shown and "AIza" not in shown


def test_every_field_shows_a_stored_config_and_gives_it_back_unchanged() -> None:
    """Opening the form and saving untouched changes nothing: each field's text for a
    stored value reads back as that value, a key left at its default stays out, and a
    key the form does not show stays in."""
    full = {
        "ai_config": {
            "enabled": True,
            "provider": "gemini",
            "model": "gemini-2.0-flash",
            "base_url": "http://127.0.0.1:11434/v1",
            "system_prompt": "Seja breve.\nEm português.",
            "history": 0,
            "assistant_id": "asst_abc123",
            "temperature": 0.2,
            "max_tokens": 512,
            "groups": False,
            "timeout_seconds": 12.5,
        },
        "timing_config": {
            "reply_delay": [0.5, 4.0],
            "typing": True,
            "mark_read": True,
            "quiet_hours": {"start": "22:00", "end": "07:00", "tz": "America/Sao_Paulo"},
            "cooldown_seconds": 30.0,
            "outbound_per_minute": 20,
            "sim": {"allocate_mb": 4},
        },
    }
    for config, stored in full.items():
        assert {spec.key for spec in bot_spec.FIELDS[config]} == set(stored) - {"sim"}
        for value in (stored, {}, {"typing": False} if config == "timing_config" else {}):
            values = {spec.key: bot_spec.shown(spec, value) for spec in bot_spec.FIELDS[config]}
            assert bot_spec.config_of(config, values, value) == value
            assert bot_spec.problems(config, value) == {}
    # a default typed out is kept only where the config already had it
    spec = bot_spec.FIELDS["ai_config"][0]
    assert bot_spec.stored(spec, False, {}) == (False, False)
    assert bot_spec.stored(spec, False, {"enabled": False}) == (True, False)
    # a remote session says where the lookup ran
    line = bot_spec.key_line("bot-1", "openai", {"openai": "OPENAI_KEY"}, "host-b")
    assert line == "openai key: host OPENAI_KEY on host-b"
