"""`p`: link a phone by its number instead of the QR. The number is checked as it is
typed (the core's rule); the code comes from the session's runner (WhatsApp for
neonize) and is shown large, with how long it can still be typed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ecosystem.errors import ZapvisorError
from ecosystem.liveview import Snapshot
from ecosystem.pairing import PAIR_STEPS, PHONE_RULE, PairingCode, phone_problem
from ecosystem.states import Status

if TYPE_CHECKING:
    from tui.app import ZapvisorApp


def big(code: str) -> str:
    """The code spaced out, so that each character reads on its own from a distance."""
    return " ".join(code)


class PairDialog(ModalScreen[None]):
    """Closes by itself once the session is connected."""

    BINDINGS = [Binding("escape", "dismiss", "close")]

    @dataclass
    class CodeReceived(Message):
        pairing: PairingCode

    @dataclass
    class Refused(Message):
        error: str

    def __init__(self, name: str, *, blink: bool = True) -> None:
        super().__init__()
        self.session_name = name
        self.blink = blink
        self.busy = False
        self.pairing: PairingCode | None = None

    @property
    def zv(self) -> ZapvisorApp:
        return cast("ZapvisorApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Link {self.session_name} by phone number", id="title")
            yield Label("phone number")
            yield Input(placeholder="5511987654321", id="phone", max_length=24, compact=True)
            yield Static(PHONE_RULE, id="phone-error", classes="hint")
            yield Static("", id="code")
            yield Static("", id="steps", classes="hint")
            with Horizontal(id="buttons"):
                yield Button("Get code (enter)", variant="primary", id="get", compact=True)
                yield Button("Close (esc)", id="close", compact=True)

    def on_mount(self) -> None:
        self.query_one("#code").display = False
        phone = self.query_one("#phone", Input)
        phone.cursor_blink = self.blink
        phone.focus()
        self.watch(self.app, "snapshot", self._paired)
        self.set_interval(1.0, self._countdown)

    def _error(self, message: str | None) -> None:
        hint = self.query_one("#phone-error", Static)
        hint.update(message or PHONE_RULE)
        hint.set_class(bool(message), "-error")

    @on(Input.Changed, "#phone")
    def _validate_as_typed(self, event: Input.Changed) -> None:
        self._error(phone_problem(event.value) if event.value.strip() else None)

    @on(Input.Submitted, "#phone")
    @on(Button.Pressed, "#get")
    def _submit(self) -> None:
        if self.busy:
            return
        phone = self.query_one("#phone", Input).value
        problem = phone_problem(phone)
        self._error(problem)
        if problem:
            return
        self.busy = True
        self.query_one("#steps", Static).update("asking for a code…")
        self._ask(phone)

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.dismiss()

    @work(thread=True, exclusive=True, group="pair", exit_on_error=False)
    def _ask(self, phone: str) -> None:
        try:
            found = self.zv.orch.pair_phone(self.session_name, phone)
        except ZapvisorError as exc:
            self.post_message(self.Refused(str(exc)))
        else:
            self.post_message(self.CodeReceived(found))

    def on_pair_dialog_code_received(self, message: CodeReceived) -> None:
        self.busy = False
        self.pairing = message.pairing
        code = self.query_one("#code", Static)
        code.update(big(message.pairing.code))
        code.remove_class("-expired")
        code.display = True
        self._countdown()

    def on_pair_dialog_refused(self, message: Refused) -> None:
        self.busy = False
        self.query_one("#steps", Static).update(Text(message.error, style="bold red"))

    def _countdown(self) -> None:
        pairing = self.pairing
        if pairing is None or self.busy:
            return
        steps = Text(f"for {pairing.phone}: {PAIR_STEPS}")
        if pairing.expires_at is not None:
            left = (pairing.expires_at - self.zv.clock()).total_seconds()
            if left > 0:
                steps.append(f"\nvalid for {int(left) // 60}:{int(left) % 60:02d} more")
            else:
                steps.append("\nexpired: press enter for a new code", style="bold yellow")
                self.query_one("#code").add_class("-expired")
        self.query_one("#steps", Static).update(steps)

    def _paired(self, snap: Snapshot | None) -> None:
        view = snap.view(self.session_name) if snap else None
        if view is not None and view.session.status == Status.CONNECTED and self.is_current:
            self.dismiss()
