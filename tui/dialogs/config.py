"""Editing a session's config; JSON is parsed and checked before anything is saved."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from ecosystem import jsonvalue
from ecosystem.botconfig import AiConfig, TimingConfig, check_ai_config, check_timing_config
from ecosystem.errors import ZapvisorError
from ecosystem.models import Session
from ecosystem.orchestrator import Orchestrator
from tui.dialogs.create import field_problem

TEXT_FIELDS = ("description", "webhook_url")
JSON_FIELDS = ("ai_config", "timing_config")
KEYS = {
    "ai_config": list(AiConfig.model_fields),
    "timing_config": [k for k in TimingConfig.model_fields if k != "sim"],  # sim: tests only
}
"""What the form lists under each JSON editor (the README has what each means)."""
CHECKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ai_config": check_ai_config,
    "timing_config": check_timing_config,
}


def parse_json_object(text: str, field: str = "") -> tuple[dict[str, Any] | None, str | None]:
    """(value, None) or (None, why it is not a JSON object, or which key of the
    session's ``field`` (ai_config, timing_config) is wrong)."""
    if not text.strip():
        return {}, None
    try:
        value = jsonvalue.loads(text, "")
    except jsonvalue.BadJSON as exc:
        return None, exc.reason.removeprefix("is ")
    if not isinstance(value, dict):
        return None, f"must be a JSON object ({{...}}), not {type(value).__name__}"
    check = CHECKS.get(field)
    if check is not None:
        try:
            value = check(value)
        except ValueError as exc:
            return None, str(exc)
    return value, None


class ConfigForm(ModalScreen[list[str] | None]):
    """Dismissed with the names of the fields saved, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "cancel"),
        Binding("ctrl+s", "save", "save", priority=True),
    ]

    @dataclass
    class Saved(Message):
        fields: list[str]

    @dataclass
    class Refused(Message):
        field: str | None
        error: str

    def __init__(self, orch: Orchestrator, session: Session, *, blink: bool = True) -> None:
        super().__init__()
        self.orch = orch
        self.session = session
        self.blink = blink

    def compose(self) -> ComposeResult:
        s = self.session
        with Vertical(id="dialog"):
            yield Label(f"Config of {s.name}", id="title")
            # The fields scroll (to the focused one) and the buttons stay in view: at
            # 80x24 the two JSON editors do not fit with everything else.
            with VerticalScroll(id="fields"):
                yield Label("description")
                yield Input(s.description, id="description", compact=True)
                yield Static("", id="description-error", classes="hint")
                yield Label("webhook URL")
                yield Input(s.webhook_url or "", id="webhook_url", compact=True)
                yield Static("", id="webhook_url-error", classes="hint")
                for field in JSON_FIELDS:
                    yield Label(f"{field} (JSON object)")
                    yield Static(f"keys: {', '.join(KEYS[field])}", classes="hint")
                    text = json.dumps(getattr(s, field), indent=2, ensure_ascii=False)
                    yield TextArea(text, id=field, soft_wrap=True)
                    yield Static("", id=f"{field}-error", classes="hint")
            yield Static("", id="form-error", classes="hint")
            with Horizontal(id="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        for box in self.query(Input):
            box.cursor_blink = self.blink
        for area in self.query(TextArea):
            area.cursor_blink = self.blink

    def _error(self, field: str, message: str | None) -> None:
        widget = self.query_one(f"#{field}-error", Static)
        widget.update(message or "")
        widget.set_class(bool(message), "-error")

    @on(Input.Changed)
    def _validate_as_typed(self, event: Input.Changed) -> None:
        field = event.input.id or ""
        self._error(field, field_problem(field, event.value))

    @on(TextArea.Changed)
    def _validate_json(self, event: TextArea.Changed) -> None:
        field = event.text_area.id or ""
        self._error(field, parse_json_object(event.text_area.text, field)[1])

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
        for field in JSON_FIELDS:
            text = self.query_one(f"#{field}", TextArea).text
            parsed, problem = parse_json_object(text, field)
            if problem:
                problems[field] = problem
            elif parsed != getattr(self.session, field):
                changes[field] = parsed
        for field in (*TEXT_FIELDS, *JSON_FIELDS):
            self._error(field, problems.get(field))
        if problems:
            return
        if not changes:
            self.dismiss([])
            return
        self._error("form", None)
        self._save(changes)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(thread=True, exclusive=True, group="configure", exit_on_error=False)
    def _save(self, changes: dict[str, Any]) -> None:
        try:
            self.orch.configure(self.session.name, changes)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else None
            self.post_message(self.Refused(field, str(err["msg"]).removeprefix("Value error, ")))
        except ZapvisorError as exc:
            message = str(exc)
            field = message.partition(".")[0] if message.startswith(JSON_FIELDS) else None
            self.post_message(self.Refused(field, message))
        else:
            self.post_message(self.Saved(sorted(changes)))

    def on_config_form_saved(self, message: Saved) -> None:
        self.dismiss(message.fields)

    def on_config_form_refused(self, message: Refused) -> None:
        known = (*TEXT_FIELDS, *JSON_FIELDS)
        self._error(message.field if message.field in known else "form", message.error)
