"""Asking before an action that cannot be undone, naming exactly what it touches."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, Static

SHOWN_NAMES = 8
"""Names listed in full; the rest are counted."""


@dataclass(frozen=True)
class Confirmed:
    purge: bool = False
    """The "also remove auth files" choice, when it was offered."""


def names_line(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


class ConfirmDialog(ModalScreen[Confirmed | None]):
    """Dismissed with Confirmed, or None when cancelled. Cancel has the focus, so an
    absent-minded enter never destroys anything."""

    BINDINGS = [
        Binding("escape,n", "cancel", "cancel"),
        Binding("y", "confirm", "yes"),
    ]

    def __init__(
        self,
        question: str,
        names: list[str],
        *,
        detail: str = "",
        verb: str = "OK",
        danger: bool = False,
        purge_option: str | None = None,
    ) -> None:
        super().__init__()
        self.question = question
        self.names = names
        self.detail = detail
        self.verb = verb
        self.danger = danger
        self.purge_option = purge_option

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="-danger" if self.danger else ""):
            yield Label(self.question, id="question")
            yield Static(names_line(self.names), id="names")
            if self.detail:
                yield Static(self.detail, id="detail")
            if self.purge_option:
                yield Checkbox(self.purge_option, id="purge")
            with Horizontal(id="buttons"):
                yield Button(
                    f"{self.verb} (y)", variant="error" if self.danger else "primary", id="yes"
                )
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "yes":
            self.action_confirm()
        else:
            self.action_cancel()

    def action_confirm(self) -> None:
        purge = bool(self.purge_option) and self.query_one("#purge", Checkbox).value
        self.dismiss(Confirmed(purge=purge))

    def action_cancel(self) -> None:
        self.dismiss(None)
