"""Editing a session's config: a field per key of the bot's ai_config and timing_config,
each checked by the same models as every other write as it is typed, or the raw JSON for
those who prefer it (the two views are kept in step). Nothing is saved while a field is
wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, Switch, TextArea

from ecosystem.botconfig import PROVIDERS
from ecosystem.errors import ZapvisorError
from ecosystem.orchestrator import Orchestrator
from ecosystem.record import RecordError
from ecosystem.session import Session
from tui.dialogs import bot_spec
from tui.dialogs.bot_spec import CONFIGS, FIELDS, OTHER
from tui.dialogs.config_json import KEYS, checked, parse_json_object
from tui.dialogs.create import field_problem
from tui.widgets.bot_field import BotField

TEXT_FIELDS = ("description", "webhook_url")


class ConfigForm(ModalScreen[list[str] | None]):
    """Dismissed with the names of the fields saved, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "cancel"),
        Binding("ctrl+s", "save", "save", priority=True),
        Binding("ctrl+r", "toggle_raw", "raw JSON", priority=True),
    ]

    @dataclass
    class Saved(Message):
        fields: list[str]

    @dataclass
    class Refused(Message):
        field: str | None
        error: str

    @dataclass
    class KeySources(Message):
        sources: dict[str, str | None] | None
        error: str | None = None

    def __init__(self, orch: Orchestrator, session: Session, *, blink: bool = True) -> None:
        super().__init__()
        self.orch = orch
        self.session = session
        self.blink = blink
        self.raw = False
        self.bases: dict[str, dict[str, Any]] = {c: dict(getattr(session, c)) for c in CONFIGS}
        """Each config as last loaded: the keys no field shows are kept from here."""
        self.sources: dict[str, str | None] | None = None
        self.sources_error: str | None = None

    def compose(self) -> ComposeResult:
        s = self.session
        with Vertical(id="dialog"):
            yield Label(f"Config of {s.name}", id="title")
            # The fields scroll (to the focused one) and the buttons stay in view: at
            # 80x24 the bot's fields do not fit with everything else.
            with VerticalScroll(id="fields"):
                yield Label("description")
                yield Input(s.description, id="description", compact=True)
                yield Static("", id="description-error", classes="hint")
                yield Label("webhook URL")
                yield Input(s.webhook_url or "", id="webhook_url", compact=True)
                yield Static("", id="webhook_url-error", classes="hint")
                with Horizontal(id="raw-row"):
                    yield Label("raw JSON (ctrl+r)")
                    yield Switch(False, id="raw", animate=False)
                with Vertical(id="form-view"):
                    for config in CONFIGS:
                        yield Label(config, classes="section")
                        if config == "ai_config":
                            yield Static(self._key_text(), id="key-source", classes="hint")
                        for spec in FIELDS[config]:
                            value = bot_spec.shown(spec, self.bases[config])
                            yield BotField(spec, value, blink=self.blink)
                        yield Static("", id=f"{config}-other-error", classes="hint")
                with Vertical(id="raw-view"):
                    for config in CONFIGS:
                        yield Label(f"{config} (JSON object)")
                        yield Static(f"keys: {', '.join(KEYS[config])}", classes="hint")
                        text = json.dumps(self.bases[config], indent=2, ensure_ascii=False)
                        yield TextArea(text, id=config, soft_wrap=True)
                        yield Static("", id=f"{config}-error", classes="hint")
            yield Static("", id="form-error", classes="hint")
            with Horizontal(id="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        for box in self.query(Input):
            box.cursor_blink = self.blink
        for area in self.query(TextArea):
            area.cursor_blink = self.blink
        self.query_one("#raw-view").display = False
        self._provider_changed()
        self._find_key_sources()

    # -- what the form holds ------------------------------------------------------

    def _fields(self, config: str) -> list[BotField]:
        return [f for f in self.query(BotField) if f.spec.config == config]

    def form_value(self, config: str) -> dict[str, Any]:
        """The config as the form's fields hold it (not yet checked)."""
        values = {f.spec.key: f.value for f in self._fields(config)}
        return bot_spec.config_of(config, values, self.bases[config])

    def _check_form(self, config: str) -> dict[str, str]:
        found = bot_spec.problems(config, self.form_value(config))
        for field in self._fields(config):
            field.show_problem(found.get(field.spec.key))
        self._error(f"{config}-other", found.get(OTHER))
        return found

    def _provider(self) -> str:
        value = self.query_one("#ai_config-provider", BotField).value
        return str(value) if value in PROVIDERS else "openai"

    def _key_text(self) -> str:
        provider = str(self.bases["ai_config"].get("provider", "openai"))
        if self.is_mounted:
            provider = self._provider()
        where = self.session.host if self.session.host != self.orch.host_id else ""
        if self.sources_error:
            return f"{provider} key: unknown — {self.sources_error}"
        return bot_spec.key_line(self.session.name, provider, self.sources, where)

    def _provider_changed(self) -> None:
        provider = self._provider()
        self.query_one("#ai_config-model", BotField).set_placeholder(bot_spec.model_hint(provider))
        url = self.query_one("#ai_config-base_url", BotField)
        url.set_placeholder(bot_spec.base_url_hint(provider))
        self.query_one("#key-source", Static).update(self._key_text())

    def _error(self, field: str, message: str | None) -> None:
        widget = self.query_one(f"#{field}-error", Static)
        widget.update(message or "")
        widget.set_class(bool(message), "-error")

    # -- as it is typed -----------------------------------------------------------

    @on(Input.Changed, "#description, #webhook_url")
    def _validate_as_typed(self, event: Input.Changed) -> None:
        field = event.input.id or ""
        self._error(field, field_problem(field, event.value))

    def on_bot_field_edited(self, message: BotField.Edited) -> None:
        self._check_form(message.field.spec.config)
        if message.field.spec.key == "provider":
            self._provider_changed()

    @on(TextArea.Changed)
    def _validate_json(self, event: TextArea.Changed) -> None:
        field = event.text_area.id or ""
        if field in CONFIGS:
            self._error(field, parse_json_object(event.text_area.text, field)[1])

    # -- the raw JSON ---------------------------------------------------------------

    def action_toggle_raw(self) -> None:
        self.query_one("#raw", Switch).toggle()

    @on(Switch.Changed, "#raw")
    def _raw_switched(self, event: Switch.Changed) -> None:
        if event.value == self.raw:
            return
        if event.value:
            self._to_raw()
        elif not self._to_form():
            with self.prevent(Switch.Changed):
                event.switch.value = True

    def _to_raw(self) -> None:
        for config in CONFIGS:
            value = self.form_value(config)
            # as the store would keep it when it is valid; as typed when not
            value = checked(value, config)[0] or value
            text = json.dumps(value, indent=2, ensure_ascii=False)
            self.query_one(f"#{config}", TextArea).text = text
        self._show_view(raw=True)

    def _to_form(self) -> bool:
        """Back to the fields, from the raw JSON: only when it is a config the model
        takes (else a field could not show what is there); it says why not."""
        parsed: dict[str, dict[str, Any]] = {}
        for config in CONFIGS:
            value, problem = parse_json_object(self.query_one(f"#{config}", TextArea).text, config)
            self._error(config, problem)
            if value is None:
                self._error("form", "fix the raw JSON first: the form shows only a valid config")
                return False
            parsed[config] = value
        for config, value in parsed.items():
            self.bases[config] = value
            for field in self._fields(config):
                field.load(bot_spec.shown(field.spec, value))
            self._check_form(config)
        self._error("form", None)
        self._provider_changed()
        self._show_view(raw=False)
        return True

    def _show_view(self, *, raw: bool) -> None:
        self.raw = raw
        self.query_one("#raw-view").display = raw
        self.query_one("#form-view").display = not raw

    # -- where the key comes from -------------------------------------------------------

    @work(thread=True, exclusive=True, group="key-sources", exit_on_error=False)
    def _find_key_sources(self) -> None:
        try:
            sources = self.orch.ai_key_sources(self.session.name)
        except ZapvisorError as exc:
            self.post_message(self.KeySources(None, str(exc)))
        else:
            self.post_message(self.KeySources(sources))

    def on_config_form_key_sources(self, message: KeySources) -> None:
        self.sources, self.sources_error = message.sources, message.error
        self.query_one("#key-source", Static).update(self._key_text())

    # -- saving ---------------------------------------------------------------------

    def _config(self, config: str) -> tuple[dict[str, Any] | None, str | None]:
        """The checked config of the view shown, or why it cannot be saved."""
        if self.raw:
            return parse_json_object(self.query_one(f"#{config}", TextArea).text, config)
        if found := self._check_form(config):
            return None, found.get(OTHER) or "a field is wrong"
        return checked(self.form_value(config), config)

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        changes: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for field in TEXT_FIELDS:
            value = self.query_one(f"#{field}", Input).value
            if problem := field_problem(field, value):
                problems[field] = problem
            elif value != (getattr(self.session, field) or ""):
                changes[field] = value or (None if field == "webhook_url" else "")
        for field in CONFIGS:
            parsed, problem = self._config(field)
            if problem:
                problems[field] = problem
            elif parsed != getattr(self.session, field):
                changes[field] = parsed
        for field in TEXT_FIELDS:
            self._error(field, problems.get(field))
        if self.raw:
            for field in CONFIGS:
                self._error(field, problems.get(field))
        if problems:
            self._error("form", f"not saved: fix {', '.join(sorted(problems))} first")
            self._scroll_to_problem()
            return
        if not changes:
            self.dismiss([])
            return
        self._error("form", None)
        self._save(changes)

    def _scroll_to_problem(self) -> None:
        wrong = [f for f in self.query(BotField) if f.has_problem]
        if wrong and not self.raw:
            self.query_one("#fields", VerticalScroll).scroll_to_widget(wrong[0], animate=False)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(thread=True, exclusive=True, group="configure", exit_on_error=False)
    def _save(self, changes: dict[str, Any]) -> None:
        try:
            self.orch.configure(self.session.name, changes)
        except RecordError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else None
            self.post_message(self.Refused(field, str(err["msg"]).removeprefix("Value error, ")))
        except ZapvisorError as exc:
            message = str(exc)
            field = message.partition(".")[0] if message.startswith(CONFIGS) else None
            self.post_message(self.Refused(field, message))
        else:
            self.post_message(self.Saved(sorted(changes)))

    def on_config_form_saved(self, message: Saved) -> None:
        self.dismiss(message.fields)

    def on_config_form_refused(self, message: Refused) -> None:
        field = message.field
        if field in CONFIGS and not self.raw:
            field = f"{field}-other"
        known = (*TEXT_FIELDS, *CONFIGS, *(f"{c}-other" for c in CONFIGS))
        self._error(field if field in known else "form", message.error)
