"""One key of the bot's config in the form: its label, its control (a switch, a list, one
box or a few), and the model's complaint under it. It holds what was typed and says when
it changed; what that means is decided by tui/dialogs/bot_spec.py."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Select, Static, Switch, TextArea

from tui.dialogs.bot_spec import FieldSpec, Shown, part_placeholder


class BotField(Vertical):
    """A field of ai_config or timing_config; posts Edited when its value changes."""

    DEFAULT_CSS = """
    BotField { height: auto; }
    BotField .row { height: auto; }
    BotField .row > .name { width: 27; color: $text-muted; }
    BotField .state { width: auto; margin-left: 1; }
    BotField Switch { border: none; height: 1; width: 10; padding: 0 1; }
    BotField Switch:focus { border: none; background: $boost; }
    BotField Input { width: 1fr; background: $boost; }
    BotField Select { width: 1fr; }
    BotField .part { margin-right: 1; }
    BotField TextArea { height: 4; }
    BotField .field-error { height: auto; color: $error; text-style: bold; display: none; }
    BotField .field-error.-error { display: block; }
    """

    @dataclass
    class Edited(Message):
        field: BotField

    def __init__(self, spec: FieldSpec, value: Shown, *, blink: bool = True) -> None:
        super().__init__(id=spec.id)
        self.spec = spec
        self._initial = value
        self._blink = blink
        if spec.hint:
            self.tooltip = spec.hint

    def compose(self) -> ComposeResult:
        spec, value, sid = self.spec, self._initial, self.spec.id
        if spec.kind == "prose":
            yield Label(spec.label, classes="prose-label")
            yield TextArea(str(value), id=f"{sid}-box", soft_wrap=True, compact=True)
        else:
            with Horizontal(classes="row"):
                yield Label(spec.label, classes="name")
                if spec.kind == "switch":
                    yield Switch(bool(value), id=f"{sid}-box", animate=False)
                    yield Label(_on_off(bool(value)), classes="state")
                elif spec.kind == "choice":
                    options = [(c, c) for c in spec.choices]
                    yield Select(
                        options, value=str(value), allow_blank=False, id=f"{sid}-box", compact=True
                    )
                elif spec.kind == "parts":
                    assert isinstance(value, tuple)
                    for (part, label), text in zip(spec.parts, value, strict=True):
                        yield Input(
                            text,
                            placeholder=part_placeholder(spec, part) or label,
                            tooltip=label,
                            id=f"{sid}-{part}",
                            classes="part",
                            compact=True,
                        )
                else:
                    yield Input(
                        str(value), placeholder=spec.placeholder, id=f"{sid}-box", compact=True
                    )
        yield Static("", id=f"{sid}-error", classes="field-error")

    def on_mount(self) -> None:
        for box in self.query(Input):
            box.cursor_blink = self._blink
        for area in self.query(TextArea):
            area.cursor_blink = self._blink

    @property
    def value(self) -> Shown:
        kind = self.spec.kind
        if kind == "switch":
            return self.query_one(Switch).value
        if kind == "choice":
            return str(self.query_one(Select).value)
        if kind == "prose":
            return self.query_one(TextArea).text
        if kind == "parts":
            return tuple(box.value for box in self.query(Input))
        return self.query_one(Input).value

    def load(self, value: Shown) -> None:
        """Show ``value`` (from the raw JSON): no Edited for it."""
        with self.prevent(
            Input.Changed, Switch.Changed, Select.Changed, TextArea.Changed, self.Edited
        ):
            kind = self.spec.kind
            if kind == "switch":
                self.query_one(Switch).value = bool(value)
                self.query_one(".state", Label).update(_on_off(bool(value)))
            elif kind == "choice":
                self.query_one(Select).value = str(value)
            elif kind == "prose":
                self.query_one(TextArea).text = str(value)
            elif isinstance(value, tuple):
                for box, text in zip(self.query(Input), value, strict=True):
                    box.value = text
            else:
                self.query_one(Input).value = str(value)

    def set_placeholder(self, text: str) -> None:
        if self.spec.kind == "text":
            self.query_one(Input).placeholder = text

    def show_problem(self, message: str | None) -> None:
        error = self.query_one(f"#{self.spec.id}-error", Static)
        error.update(message or "")
        error.set_class(bool(message), "-error")

    @property
    def problem(self) -> str:
        return (
            str(self.query_one(f"#{self.spec.id}-error", Static).render())
            if self.has_problem
            else ""
        )

    @property
    def has_problem(self) -> bool:
        return self.query_one(f"#{self.spec.id}-error", Static).has_class("-error")

    @on(Switch.Changed)
    def _switched(self, event: Switch.Changed) -> None:
        self.query_one(".state", Label).update(_on_off(event.value))
        self._edited(event)

    @on(Input.Changed)
    @on(Select.Changed)
    @on(TextArea.Changed)
    def _edited(self, event: Message) -> None:
        event.stop()
        self.post_message(self.Edited(self))


def _on_off(value: bool) -> str:
    return "on" if value else "off"
