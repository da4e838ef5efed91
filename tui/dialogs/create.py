"""The new-session form: each field checked as it is typed, with the core's own rules;
errors appear under the field; enter in any field submits (the connector list opens
with space or an arrow key), escape cancels."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from ecosystem.errors import InvalidName, RunnerError, SessionExists, ZapvisorError
from ecosystem.models import NewSession
from ecosystem.names import NAME_RULE, name_problem
from ecosystem.orchestrator import Orchestrator
from ecosystem.record import RecordError
from ecosystem.session import CONNECTORS, DEFAULT_CONNECTOR, check_description, check_webhook_url

FIELDS = ("name", "description", "connector", "webhook_url")
AUTOMATIC = "automatic"
"""The host choice that lets the core place the session (the host with most room)."""
CONNECTOR_HINT = "neonize: real WhatsApp · sim: a simulated phone (tests, demos)"


@dataclass(frozen=True)
class Created:
    """What the form is dismissed with."""

    name: str
    warning: str | None = None
    """Set when the session exists but its runner did not become healthy."""


def field_problem(field: str, value: str) -> str | None:
    """The same rule the core applies, for one field, as the operator types."""
    try:
        if field == "name":
            return name_problem(value)
        if field == "description":
            check_description(value)
        elif field == "webhook_url":
            check_webhook_url(value or None)
    except ValueError as exc:
        return str(exc)
    return None


class ConnectorSelect(Select[str]):
    """The connector list: enter creates the session, as in every other field of the
    form; space or an arrow key opens the list."""

    BINDINGS = [
        Binding("down,space,up", "show_overlay", "show the list", show=False),
        Binding("enter", "screen.submit", "create", show=False),
    ]


class CreateForm(ModalScreen[Created | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    @dataclass
    class Finished(Message):
        created: Created

    @dataclass
    class Refused(Message):
        field: str | None
        error: str

    def __init__(
        self, orch: Orchestrator, *, blink: bool = True, hosts: list[str] | None = None
    ) -> None:
        super().__init__()
        self.orch = orch
        self.blink = blink
        self.busy = False
        self.hosts = hosts or []
        """The fleet's hosts to choose from; none (a lone host): no choice shown."""

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("New session", id="title")
            yield Label("name")
            yield Input(placeholder="cliente-001", id="name", max_length=48, compact=True)
            yield Static(NAME_RULE, id="name-error", classes="hint")
            yield Label("description")
            yield Input(placeholder="optional", id="description", compact=True)
            yield Static("", id="description-error", classes="hint")
            yield Label("connector")
            yield ConnectorSelect(
                [(c, c) for c in CONNECTORS], value=DEFAULT_CONNECTOR, allow_blank=False,
                id="connector", compact=True,
            )  # fmt: skip
            yield Static(CONNECTOR_HINT, classes="hint")
            if self.hosts:
                yield Label("host")
                choices = [(f"{AUTOMATIC} (the one with most room)", AUTOMATIC)]
                choices += [(h, h) for h in self.hosts]
                yield Select(choices, value=AUTOMATIC, allow_blank=False, id="host", compact=True)
            yield Label("webhook URL")
            yield Input(placeholder="https://… (optional)", id="webhook_url", compact=True)
            yield Static("", id="webhook_url-error", classes="hint")
            yield Static("", id="form-error", classes="hint")
            with Horizontal(id="buttons"):
                yield Button("Create (enter)", variant="primary", id="create", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        for box in self.query(Input):
            box.cursor_blink = self.blink

    def _error(self, field: str, message: str | None, *, hint: str = "") -> None:
        widget = self.query_one(f"#{field}-error", Static)
        widget.update(message or hint)
        widget.set_class(bool(message), "-error")

    @on(Input.Changed)
    def _validate_as_typed(self, event: Input.Changed) -> None:
        field = event.input.id or ""
        problem = field_problem(field, event.value)
        if field == "name" and not event.value:
            problem = None  # nothing typed yet: show the rule, not an error
        self._error(field, problem, hint=NAME_RULE if field == "name" else "")

    @on(Input.Submitted)
    @on(Button.Pressed, "#create")
    def action_submit(self) -> None:
        if self.busy:
            return
        values = {f: self.query_one(f"#{f}", Input).value for f in FIELDS if f != "connector"}
        problems = {f: p for f, v in values.items() if (p := field_problem(f, v))}
        for field in values:
            self._error(field, problems.get(field), hint=NAME_RULE if field == "name" else "")
        if problems:
            self.query_one(f"#{next(iter(problems))}", Input).focus()
            return
        try:
            new = NewSession(
                name=values["name"],
                description=values["description"],
                connector=str(self.query_one("#connector", Select).value),
                webhook_url=values["webhook_url"] or None,
            )
        except RecordError as exc:
            err = exc.errors()[0]
            where = str(err["loc"][0]) if err["loc"] else None
            self.post_message(self.Refused(where, str(err["msg"]).removeprefix("Value error, ")))
            return
        host = None
        if self.hosts:
            chosen = str(self.query_one("#host", Select).value)
            host = None if chosen == AUTOMATIC else chosen
        where = f" on {host}" if host else ""
        self._set_busy(True, f"creating {new.name}{where}: reserving a port, starting its runner…")
        self._create(new, host)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.busy:
            self.notify("still creating; it finishes (or fails) in a few seconds")
            return
        self.dismiss(None)

    def _set_busy(self, busy: bool, status: str = "") -> None:
        self.busy = busy
        for widget in self.query("Input, Select, Button"):
            widget.disabled = busy
        form_error = self.query_one("#form-error", Static)
        form_error.update(status)
        form_error.set_class(False, "-error")

    @work(thread=True, exclusive=True, group="create", exit_on_error=False)
    def _create(self, new: NewSession, host: str | None) -> None:
        try:
            view = self.orch.create(new, host=host)
        except RunnerError as exc:
            # The session exists; its runner is not healthy (its screen says why).
            self.post_message(self.Finished(Created(new.name, warning=str(exc))))
        except (SessionExists, InvalidName) as exc:
            self.post_message(self.Refused("name", str(exc)))
        except ZapvisorError as exc:
            self.post_message(self.Refused(None, str(exc)))
        else:
            self.post_message(self.Finished(Created(view.name)))

    def on_create_form_finished(self, message: Finished) -> None:
        self.busy = False
        self.dismiss(message.created)

    def on_create_form_refused(self, message: Refused) -> None:
        self._set_busy(False)
        if message.field in FIELDS and message.field != "connector":
            self._error(message.field, message.error)
            self.query_one(f"#{message.field}", Input).focus()
        else:
            self._error("form", message.error)
