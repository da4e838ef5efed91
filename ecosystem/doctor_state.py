"""`zapvisor doctor`'s checks of what lives on this host: supervisord's config file, the
port range, each session's port and token file. Each returns what it found as Checks
(see doctor.py for the rest)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ecosystem import names
from ecosystem.errors import ZapvisorError
from ecosystem.ports import port_is_free, who_holds
from ecosystem.session import Session
from ecosystem.supctl import apply as applier
from ecosystem.supctl import render
from ecosystem.views import SessionView

if TYPE_CHECKING:
    from ecosystem.reads import Reads

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    level: str
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def config_check(orch: Reads, sessions: Sequence[Session] | None) -> Check | None:
    """supervisord.conf as it is on disk: one supervisord would refuse (empty, cut
    short) fails; one that differs from what the store holds (``sessions``, None when
    the store did not answer) is a warning. Nothing to say when there is none yet."""
    paths = orch.paths
    try:
        text = paths.conf.read_text("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return Check("config", FAIL, f"cannot read {paths.conf}: {exc}", "`zapvisor apply`")
    try:
        on_disk = set(render.check(text))
    except ZapvisorError as exc:
        size = f"{len(text)} bytes" if text.strip() else "empty"
        return Check(
            "config",
            FAIL,
            f"{paths.conf} ({size}) is not a config supervisord accepts: {exc}",
            "`zapvisor apply` writes it again from the store",
        )
    if sessions is None or not paths.credentials.exists():
        return None  # rendering it would need (and make) what is missing
    # with zapvisor's RPC namespace or without, as the live file: apply writes either,
    # depending on the supervisord it finds
    rpcext = "[rpcinterface:zapvisor]" in text
    expected, programs = applier.render_for(paths, orch.settings, sessions, rpcext=rpcext)
    missing = sorted(set(programs) - on_disk)
    if missing:
        return Check(
            "config",
            FAIL,
            f"{paths.conf} has no entry for {', '.join(missing)} (cut short?): supervisord "
            "would drop those at its next reload",
            "`zapvisor apply` writes it again from the store",
        )
    if expected != text:
        return Check(
            "config",
            WARN,
            f"{paths.conf} differs from what the store holds (edited by hand, or a change "
            "made on another host)",
            "`zapvisor apply` writes it again and applies the difference",
        )
    return None


def ports_check(orch: Reads, sessions: Sequence[Session] | None) -> Check:
    """The port range: used by sessions, free, or bound by other processes. A port a
    runner of this state dir holds is a session's, also when the store did not answer
    (``sessions`` None) and could not say whose."""
    s = orch.settings
    owned = {x.port: x.name for x in sessions or ()}
    busy, ours = [], []
    for port in orch.ports:
        if port in owned or port_is_free(port, s.bind):
            continue
        holder = who_holds(port)
        session = runner_session(holder.pid, orch.paths.home) if holder.pid else None
        if session is not None:
            ours.append(f"{port} ({session})")
        else:
            busy.append(str(holder))
    used = len(owned) if sessions is not None else len(ours)
    free = len(orch.ports) - len(owned) - len(ours) - len(busy)
    detail = f"{s.base_port}-{s.last_port}: {used} used by sessions, {free} free"
    if sessions is None and ours:
        detail += " (the store did not answer; runners hold " + ", ".join(ours) + ")"
    if busy:
        detail += "; bound by other processes: " + ", ".join(busy)
        return Check("ports", WARN, detail, "stop those processes or move BASE_PORT")
    return Check("ports", OK, detail)


def runner_session(pid: int, home: Path) -> str | None:
    """The session whose runner ``pid`` is, when it is a runner of this state dir."""
    import psutil

    try:
        cmd = psutil.Process(pid).cmdline()
    except psutil.Error:
        return None
    return names.runner_session(cmd, str(home))


def session_file_checks(orch: Reads, views: Sequence[SessionView]) -> list[Check]:
    """Per session: its port held by another process while its runner is down (it could
    not start: port drift), its API token file missing (a session moved here without
    its files)."""
    out = []
    for v in views:
        if v.port_holder:
            out.append(
                Check(
                    f"session {v.name}",
                    WARN,
                    f"its runner is down and its port {v.session.port} is {v.port_holder}: "
                    "it cannot start",
                    "stop that process, or delete the session and create it again (it gets "
                    "a free port)",
                )
            )
        token = orch.paths.api_token_file(v.name)
        if not token.exists():
            out.append(
                Check(
                    f"session {v.name}",
                    WARN,
                    f"no API token on this host ({token} is missing)",
                    f"`zapvisor token {v.name} --rotate` makes a new one",
                )
            )
    return out
