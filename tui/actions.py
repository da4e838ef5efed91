"""Operator actions on one or many sessions: ask when it matters, run the core call off
the event loop, tell the operator what happened.

Keys, the command palette and the session screen all come through
``SessionActions.request_action``, so an action behaves the same from everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import work
from textual.app import App

from ecosystem.errors import ZapvisorError
from ecosystem.liveview import Snapshot
from ecosystem.orchestrator import Orchestrator
from ecosystem.states import PROCESS_UP
from tui.action_table import BY_NAME
from tui.dialogs.confirm import ConfirmDialog, Confirmed
from tui.messages import ActionsFinished


def split_toggle(snap: Snapshot | None, names: list[str]) -> tuple[list[str], list[str]]:
    """`s` on many rows: (to stop, to start). Running ones stop, the others start."""
    stop: list[str] = []
    start: list[str] = []
    for name in names:
        view = snap.view(name) if snap else None
        running = view is not None and view.process_state in PROCESS_UP
        (stop if running else start).append(name)
    return stop, start


def perform(orch: Orchestrator, verb: str, name: str, *, purge: bool = False) -> str:
    """One core call; returns a short result for the notification."""
    action = BY_NAME.get(verb)
    if action is None or action.call is None:
        raise ValueError(f"unknown action {verb!r}")
    return action.call(orch, name, purge)


class SessionActions(App[None]):
    """The app's action half; ZapvisorApp sets ``orch`` and ``snapshot``."""

    orch: Orchestrator
    snapshot: Snapshot | None
    request_refresh: Callable[[], None]

    def _init_actions(self) -> None:
        self.busy: set[str] = set()
        self._then: Callable[[], None] | None = None

    def request_action(
        self, verb: str, names: list[str], then: Callable[[], None] | None = None
    ) -> None:
        """Confirm when the action destroys something or touches several sessions;
        ``then`` runs once the action is under way (not when it is cancelled)."""
        self._then = then
        names = [n for n in names if n]
        if not names:
            self.notify("no session selected", severity="warning")
            return
        busy = [n for n in names if n in self.busy]
        if busy:
            # All or nothing: acting on part of a selection would surprise more.
            self.notify(
                f"still working on {', '.join(busy)}: nothing done, try again in a moment",
                severity="warning",
                markup=False,
            )
            return
        if verb == "toggle":
            stop, start = split_toggle(self.snapshot, names)
            plan = [("stop", n) for n in stop] + [("start", n) for n in start]
            if len(names) == 1:
                self._run_plan(plan)
                return
            parts = [f"stop {len(stop)}" if stop else "", f"start {len(start)}" if start else ""]
            question = " and ".join(p for p in parts if p).capitalize() + " sessions?"
            self._confirm(question, names, plan, verb="Go")
            return
        plan = [(verb, n) for n in names]
        count = f"{len(names)} session" + ("s" if len(names) > 1 else "")
        action = BY_NAME[verb]
        ask = action.ask
        if ask is not None:
            self._confirm(
                ask.question.format(count=count),
                names,
                plan,
                verb=ask.verb,
                danger=ask.danger,
                detail=ask.detail,
                purge_option=ask.purge_option,
            )
        elif len(names) > 1:
            label = action.label.capitalize()
            self._confirm(f"{label} {count}?", names, plan, verb=label)
        else:
            self._run_plan(plan)

    def _confirm(
        self,
        question: str,
        names: list[str],
        plan: list[tuple[str, str]],
        *,
        verb: str,
        danger: bool = False,
        detail: str = "",
        purge_option: str | None = None,
    ) -> None:
        def answered(result: Confirmed | None) -> None:
            if result is not None:
                self._run_plan(plan, purge=result.purge)

        dialog = ConfirmDialog(
            question, names, detail=detail, verb=verb, danger=danger, purge_option=purge_option
        )
        self.push_screen(dialog, answered)

    def _run_plan(self, plan: list[tuple[str, str]], *, purge: bool = False) -> None:
        self.busy.update(name for _verb, name in plan)
        self._perform(plan, purge)
        then, self._then = self._then, None
        if then is not None:
            then()

    @work(thread=True, group="actions", exit_on_error=False)
    def _perform(self, plan: list[tuple[str, str]], purge: bool) -> None:
        verbs = {verb for verb, _name in plan}
        message = ActionsFinished(verbs.pop() if len(verbs) == 1 else "start/stop")
        for verb, name in plan:
            try:
                message.done[name] = (
                    f"{BY_NAME[verb].past}: {perform(self.orch, verb, name, purge=purge)}"
                )
            except ZapvisorError as exc:
                message.failed[name] = f"{verb} failed: {exc}"
            except Exception as exc:  # a bug must not leave the session marked busy
                message.failed[name] = f"{verb} failed unexpectedly: {exc!r}"
        self.post_message(message)

    def on_actions_finished(self, message: ActionsFinished) -> None:
        self.busy.difference_update(message.done)
        self.busy.difference_update(message.failed)
        if len(message.done) == 1:
            name, what = next(iter(message.done.items()))
            self.notify(f"{name} {what}", markup=False)
        elif message.done:
            names = ", ".join(message.done)
            self.notify(f"{message.verb}: {len(message.done)} done ({names})", markup=False)
        for name, error in list(message.failed.items())[:3]:
            self.notify(f"{name}: {error}", severity="error", markup=False, timeout=15)
        if len(message.failed) > 3:
            self.notify(
                f"{len(message.failed) - 3} more failed; see their session screens",
                severity="error",
            )
        self.request_refresh()
