"""`m`: move a session to another host (`zapvisor move NAME --to HOST`). The hosts come
from their heartbeats in the store, each with why it cannot take the session now; the
move itself runs off the event loop and says how it went."""

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
from textual.widgets import Button, Label, OptionList, Static
from textual.widgets.option_list import Option

from ecosystem.errors import ZapvisorError
from ecosystem.lease import HostBeat
from ecosystem.moves import MoveResult

if TYPE_CHECKING:
    from tui.app import ZapvisorApp


class MoveDialog(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss", "close")]

    @dataclass
    class HostsLoaded(Message):
        hosts: list[tuple[HostBeat, str | None]]

    @dataclass
    class Moved(Message):
        result: MoveResult

    @dataclass
    class Failed(Message):
        error: str

    def __init__(self, name: str) -> None:
        super().__init__()
        self.session_name = name
        self.busy = True

    @property
    def zv(self) -> ZapvisorApp:
        return cast("ZapvisorApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Move {self.session_name} to another host", id="title")
            yield OptionList(id="hosts")
            yield Static("looking at the hosts…", id="steps", classes="hint")
            with Horizontal(id="buttons"):
                yield Button("Move (enter)", variant="primary", id="move", compact=True)
                yield Button("Close (esc)", id="close", compact=True)

    def on_mount(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="move", exit_on_error=False)
    def _load(self) -> None:
        try:
            hosts = self.zv.orch.move_targets(self.session_name)
        except ZapvisorError as exc:
            self.post_message(self.Failed(str(exc)))
        else:
            self.post_message(self.HostsLoaded(hosts))

    def on_move_dialog_hosts_loaded(self, message: HostsLoaded) -> None:
        self.busy = False
        options = self.query_one("#hosts", OptionList)
        for host, why in message.hosts:
            line = Text(host.host, style="bold" if why is None else "dim")
            free = host.free_slots
            line.append(f"  {host.sessions} sessions" + (f", {free} free" if free else ""))
            if why:
                line.append(f"  · {why}", style="red")
            options.add_option(Option(line, id=host.host, disabled=why is not None))
        steps = self.query_one("#steps", Static)
        if not message.hosts:
            steps.update("no other host has sent a heartbeat: there is nowhere to move it")
        else:
            steps.update("same phone, no new QR; its host stops it, the chosen one starts it")
            able = [i for i, (_, why) in enumerate(message.hosts) if why is None]
            if able:
                options.highlighted = able[0]
            options.focus()

    @on(OptionList.OptionSelected, "#hosts")
    @on(Button.Pressed, "#move")
    def _submit(self) -> None:
        options = self.query_one("#hosts", OptionList)
        if self.busy or options.highlighted is None:
            return
        target = options.get_option_at_index(options.highlighted).id
        if target is None:
            return
        self.busy = True
        self.query_one("#steps", Static).update(f"moving to {target}…")
        self._move(target)

    @work(thread=True, exclusive=True, group="move", exit_on_error=False)
    def _move(self, target: str) -> None:
        try:
            result = self.zv.orch.move(self.session_name, target)
        except ZapvisorError as exc:
            self.post_message(self.Failed(str(exc)))
        else:
            self.post_message(self.Moved(result))

    def on_move_dialog_moved(self, message: Moved) -> None:
        r = message.result
        self.app.notify(
            f"{r.name} moved from {r.from_host} to {r.to_host} (port {r.port}): {r.status} "
            f"in {r.seconds:.0f} s",
            markup=False,
        )
        self.dismiss()

    def on_move_dialog_failed(self, message: Failed) -> None:
        self.busy = False
        self.query_one("#steps", Static).update(Text(message.error, style="bold red"))

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.dismiss()
