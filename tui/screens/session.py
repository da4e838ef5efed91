"""One session: its pairing QR (given the whole screen while it waits for a scan), what
its process is doing and why it is down, its config, and its log as it is written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Static
from textual.worker import get_current_worker

from ecosystem.conversations import BotActivity
from ecosystem.errors import SessionNotFound, ZapvisorError
from ecosystem.liveview import Snapshot
from ecosystem.pairing import no_qr_reason
from ecosystem.states import FAILING_STATES, PROCESS_SERVING, Status
from ecosystem.views import SessionView
from tui.action_table import bindings
from tui.dialogs.config import ConfigForm
from tui.format import status_text
from tui.widgets.banner import DegradedBanner
from tui.widgets.facts import ConfigSummary, ProcessFacts
from tui.widgets.key_bar import KeyBar
from tui.widgets.log_pane import LogPane
from tui.widgets.qr import QRCode

if TYPE_CHECKING:
    from tui.app import ZapvisorApp

LOG_BACKLOG = 200
"""Lines of the log shown when the screen opens."""


class SessionScreen(Screen[None]):
    BINDINGS = bindings("session")

    mode: reactive[str] = reactive("auto", init=False)
    """"qr", "details", or "auto": the QR while one waits for a scan, else details."""

    @dataclass
    class LogLinesRead(Message):
        lines: list[tuple[bool, str]]
        """(from stderr, raw line)"""

    @dataclass
    class WhyDownFound(Message):
        text: str

    @dataclass
    class DeliveriesCounted(Message):
        counts: dict[str, int] | None
        bot: BotActivity | None = None

    def __init__(self, name: str, *, mode: str = "auto", focus_log: bool = False) -> None:
        super().__init__()
        self.session_name = name
        self.set_reactive(SessionScreen.mode, mode)
        self.focus_log = focus_log
        self.view: SessionView | None = None
        self.seen = False
        self.gone = False
        self.left = False
        self.rotations = 0
        self.rotated_at = ""
        self.why: str | None = None
        self._why_for: tuple[str, int] | None = None
        self.deliveries: dict[str, int] | None = None
        self.bot: BotActivity | None = None
        """The webhook outbox's counts, read once per refresh while this screen shows."""

    @property
    def zv(self) -> ZapvisorApp:
        return cast("ZapvisorApp", self.app)

    @property
    def current_session(self) -> str:
        return self.session_name

    def compose(self) -> ComposeResult:
        yield Static(self.session_name, id="title")
        yield DegradedBanner(id="degraded")
        with ContentSwitcher(initial="details", id="body"):
            with Vertical(id="pairing"):
                yield QRCode(id="qr")
                yield Static("", id="qr-caption")
            with Vertical(id="details"):
                with Horizontal(id="panels"):
                    yield ProcessFacts(id="facts")
                    yield ConfigSummary(id="config")
                yield LogPane(id="log")
        yield KeyBar()

    def on_mount(self) -> None:
        qr = self.query_one(QRCode)
        qr.session = self.session_name
        qr.compact = self.zv.orch.settings.qr_compact
        self.watch(self.app, "snapshot", self._show)
        self.watch(self.app, "degraded", self._degraded)
        self.set_interval(1.0, self._caption)
        self.zv.show_pss(self.session_name, True)
        if self.focus_log:
            self.query_one(LogPane).focus()
        self._follow_logs()

    def on_unmount(self) -> None:
        self.zv.show_pss(self.session_name, False)

    def on_screen_resume(self) -> None:
        if self.gone:  # deleted (or moved away) while a dialog was on top
            self._leave()

    def _leave(self) -> None:
        """Dismiss once: a refresh and the resume after a dialog may both find the
        session gone (a second dismiss would pop another screen)."""
        if not self.left:
            self.left = True
            self.dismiss()

    def _degraded(self, message: str) -> None:
        self.query_one(DegradedBanner).message = message

    # -- showing the newest snapshot -------------------------------------------------

    def _show(self, snap: Snapshot | None) -> None:
        view = snap.view(self.session_name) if snap else None
        if view is None:
            if self.seen and snap is not None and not self.gone:
                self.gone = True
                self.notify(
                    f"{self.session_name} is no longer on this host (deleted, or moved)",
                    markup=False,
                )
                # only when on top: is_current is also true behind a dialog, and a
                # dismiss would pop the dialog (the resume after it comes back here)
                if self.app.screen is self:
                    self._leave()
            return
        self.seen, self.view = True, view
        assert snap is not None
        self._title(view)
        self.query_one(ProcessFacts).show(view, snap.proc(view), snap.taken_at, self.why)
        self.query_one(ConfigSummary).show(view, self.deliveries, self.bot, snap.taken_at)
        if self.is_current:
            self._count_deliveries()
        serving = view.process_state in PROCESS_SERVING
        waiting = serving and view.session.status == Status.WAITING_SCAN
        payload = view.session.qr_payload if waiting else None
        qr = self.query_one(QRCode)
        if payload and payload != qr.payload:
            self.rotations += 1
            self.rotated_at = self.zv.clock().astimezone().strftime("%H:%M:%S")
        qr.payload = payload
        self._switch()
        self._caption()
        self._explain_if_down(view)

    def _title(self, view: SessionView) -> None:
        title = Text(view.name, style="bold")
        title.append("  ")
        title.append_text(status_text(view))
        s = view.session
        title.append(f"  port {s.port}  pid {view.pid or '-'}  {s.connector}", style="dim")
        snap = self.zv.snapshot
        if snap is not None and snap.fleet:
            title.append(f"  on {s.host}", style="bold" if s.host != snap.host_id else "dim")
        if view.unreachable:
            title.append(f"  {view.unreachable}", style="bold red")
        if s.phone:
            title.append(f"  {s.phone}")
        self.query_one("#title", Static).update(title)

    def watch_mode(self) -> None:
        self._switch()

    def _switch(self) -> None:
        showing_qr = self.mode == "qr" or (
            self.mode == "auto" and self.query_one(QRCode).payload is not None
        )
        self.query_one(ContentSwitcher).current = "pairing" if showing_qr else "details"
        self._fit_title()

    @property
    def _tight(self) -> bool:
        """The QR on show fits only with the title's row too (the compact code at 80x24:
        21 rows, one caption line and the key bar fill the screen): the caption then
        names the session."""
        qr = self.query_one(QRCode)
        if self.query_one(ContentSwitcher).current != "pairing" or not qr.payload:
            return False
        rest = self.query_one(KeyBar).outer_size.height
        rest += self.query_one(DegradedBanner).outer_size.height
        spare = self.size.height - rest - 2  # the title, one caption line
        return spare < qr.needed[1] <= spare + 1

    def _fit_title(self) -> None:
        self.query_one("#title", Static).display = not self._tight

    def on_resize(self) -> None:
        self._fit_title()
        self._caption()

    def _caption(self) -> None:
        view = self.view
        caption = self.query_one("#qr-caption", Static)
        if view is None:
            caption.update("waiting for the first refresh…")
            return
        s = view.session
        qr = self.query_one(QRCode)
        if qr.payload is None:
            if s.status == Status.CONNECTED and view.process_state in PROCESS_SERVING:
                caption.update(f"connected as {s.phone} · q shows the details")
            else:
                why = no_qr_reason(s, view.process_state)
                caption.update(f"no QR code: {why} · q shows the details")
            return
        left = None
        if s.qr_expires_at is not None:
            left = (s.qr_expires_at - self.zv.clock()).total_seconds()
        expiry = (f"expires in {left:.0f} s" if left > 0 else "expired, next soon") if left else ""
        if self._tight:  # one line, with the session's name the hidden title had
            left_text = (f"{left:.0f} s left" if left > 0 else "expired") if left else ""
            back = "c: half-blocks if broken" if qr.compact else ""
            tail = " · ".join(x for x in ("WhatsApp > Linked devices", left_text, back) if x)
            room = max(8, self.size.width - len(tail) - 3)
            name = s.name if len(s.name) <= room else s.name[: room - 1] + "…"
            line = f"{name} · {tail}"
            caption.update(Text(line[: self.size.width], style="bold"))
            return
        text = Text("WhatsApp > Linked devices > Link a device", style="bold")
        if expiry:
            text.append(f" · {expiry}")
        text.append(f" · QR #{self.rotations} at {self.rotated_at}", style="dim")
        if qr.compact:
            text.append("\ncompact QR: if it looks broken, c draws it with half-blocks")
        caption.update(text)

    # -- why it is down (asked of supervisord once per fall, not every refresh) -------

    def _explain_if_down(self, view: SessionView) -> None:
        proc = view.process
        if proc is None or proc.state not in FAILING_STATES:
            self.why, self._why_for = None, None
            return
        key = (proc.state, proc.stop)
        if key != self._why_for:
            self._why_for = key
            self._why_down()

    @work(thread=True, exclusive=True, group="why", exit_on_error=False)
    def _why_down(self) -> None:
        try:
            text = self.zv.orch.why_down(self.session_name)
        except ZapvisorError as exc:
            text = f"cannot ask supervisord: {exc}"
        self.post_message(self.WhyDownFound(text))

    def on_session_screen_why_down_found(self, message: WhyDownFound) -> None:
        self.why = message.text
        self._show(self.zv.snapshot)

    # -- webhook deliveries and the bot's last reply/error (two store queries per
    # refresh, only while this screen shows) --

    @work(thread=True, exclusive=True, group="deliveries", exit_on_error=False)
    def _count_deliveries(self) -> None:
        try:
            counts = self.zv.poller.webhook_counts(self.session_name)
            bot = self.zv.poller.bot_activity(self.session_name)
        except ZapvisorError:
            counts, bot = None, None  # the refresh itself reports a store that fails
        self.post_message(self.DeliveriesCounted(counts, bot))

    def on_session_screen_deliveries_counted(self, message: DeliveriesCounted) -> None:
        new = (message.counts, message.bot)
        if new != (self.deliveries, self.bot) and self.view is not None:
            self.deliveries, self.bot = new
            snap = self.zv.snapshot
            now = snap.taken_at if snap else None
            self.query_one(ConfigSummary).show(self.view, self.deliveries, self.bot, now)

    # -- the log -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="logs", exit_on_error=False)
    def _follow_logs(self) -> None:
        worker = get_current_worker()
        try:
            batches = self.zv.orch.follow_logs(
                self.session_name, backlog=LOG_BACKLOG, stdout=True, stderr=True
            )
            for batch in batches:
                if worker.is_cancelled:
                    break
                if batch:
                    self.post_message(self.LogLinesRead([(ln.stderr, ln.text) for ln in batch]))
        except SessionNotFound:
            pass  # deleted: the screen says so and closes
        except ZapvisorError as exc:
            self.post_message(self.LogLinesRead([(True, f"cannot read the log: {exc}")]))

    def on_session_screen_log_lines_read(self, message: LogLinesRead) -> None:
        self.query_one(LogPane).add(message.lines)

    # -- keys ----------------------------------------------------------------------------

    def action_toggle_qr(self) -> None:
        self.mode = "details" if self.query_one(ContentSwitcher).current == "pairing" else "qr"

    def action_compact_qr(self) -> None:
        qr = self.query_one(QRCode)
        qr.compact = not qr.compact
        self.mode = "qr"
        self._fit_title()
        self._caption()

    def action_logs(self) -> None:
        self.mode = "details"
        self.query_one(LogPane).focus()

    def action_act(self, verb: str) -> None:
        self.zv.request_action(verb, [self.session_name])

    def action_move(self) -> None:
        self.zv.move_elsewhere(self.session_name)

    def action_pair(self) -> None:
        self.zv.pair_by_phone(self.session_name)

    def action_edit(self) -> None:
        if self.view is None:
            return

        def saved(fields: list[str] | None) -> None:
            if fields:
                self.notify(f"{self.session_name}: saved {', '.join(fields)}", markup=False)
                self.zv.request_refresh()

        form = ConfigForm(self.zv.orch, self.view.session, blink=self.zv.blink)
        self.app.push_screen(form, saved)
