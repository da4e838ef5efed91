"""Make supervisord match the store: render, check, write, then change only what changed.

This is what `supervisorctl update` does (``reloadConfig`` then add/remove the changed
groups), with one difference: programs never autostart, so the desired state in the
store alone decides what runs. And a create, when its program is all that changes and
supervisord runs what the live file says, skips the reread (whose cost grows with every
program present): supervisord parses just the new section (``zapvisor.addPrograms``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ecosystem import boot
from ecosystem.errors import SupervisorError
from ecosystem.filelock import file_lock
from ecosystem.names import program_name
from ecosystem.paths import StatePaths, write_private
from ecosystem.session import Session
from ecosystem.settings import Settings
from ecosystem.states import PROCESS_UP, DesiredState
from ecosystem.supctl import daemon, render, shapes
from ecosystem.supctl.rpc import ProcessInfo, Supervisor, never_started
from ecosystem.supctl.statefiles import deferred, save_deferred, write_runtime_env


@dataclass
class ApplyResult:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    """Running programs whose entry changed: they keep their old entry until their own
    session is started or restarted, so one session's action never restarts another."""
    booted: bool = False
    """True when supervisord itself was (re)started by this apply."""


@contextmanager
def apply_lock(paths: StatePaths, timeout: float = 60.0) -> Iterator[None]:
    """Serialise config writes on this host: each apply renders from the store while
    holding it, so two concurrent creates can never drop each other's program."""
    paths.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    with file_lock(paths.apply_lock, timeout) as held:
        if not held:
            raise SupervisorError(
                f"another zapvisor has held {paths.apply_lock} for {timeout:g} s; "
                "is a command stuck?"
            )
        yield


def read_live(paths: StatePaths) -> str:
    """The config file as it is ("" when there is none or it cannot be read)."""
    try:
        return paths.conf.read_text("utf-8")
    except (OSError, ValueError):
        return ""


def render_for(
    paths: StatePaths,
    settings: Settings,
    sessions: Sequence[Session],
    *,
    rpcext: bool = True,
    live: str | None = None,
) -> tuple[str, list[str]]:
    """The config text for ``sessions`` (checked by supervisor's parser, except for the
    program sections the live file already holds: they passed when it was written) and
    the program names it holds; ``rpcext`` as :func:`wants_rpcext` says; ``live``: the
    config file's text, when the caller has read it."""
    creds = daemon.credentials(paths)
    specs = render.program_specs(paths, [(s.name, s.port) for s in sessions])
    text = render.render(
        paths,
        username=creds.username,
        password=creds.password,
        programs=specs,
        max_sessions=settings.max_sessions,
        monitor=render.monitor_spec(paths) if settings.monitor else None,
        rpcext=rpcext,
        fork_runners=settings.fork_runners,
        cache=paths.home / "render-layout.json",
    )
    if live is None:
        live = read_live(paths)
    kept = shapes.load(paths)
    known = set(kept)
    programs = render.check(text, checked=live, known=known)
    shapes.save(paths, kept, known)
    return text, programs


def wants_rpcext(up: bool, sup: Supervisor) -> bool:
    """Whether the config may hold ``[rpcinterface:zapvisor]``: when supervisord is
    down (it starts with this install's python, which has the module) or was started with
    it. A supervisord started before (by an older install, whose python may lack the
    module) would fail every reread on the factory it cannot import."""
    return not up or sup.serves_compact()


def write_config(paths: StatePaths, settings: Settings, text: str) -> bool:
    """Write the runtime settings and the config; returns whether the config changed."""
    write_runtime_env(paths, settings)
    try:
        if paths.conf.exists() and paths.conf.read_text("utf-8") == text:
            return False
        write_private(paths.conf, text)
    except OSError as exc:
        raise SupervisorError(f"cannot write {paths.conf}: {exc}") from None
    return True


def sync(
    paths: StatePaths,
    settings: Settings,
    sup: Supervisor,
    sessions: Sequence[Session],
    start: Callable[[list[tuple[str, int]]], list[str]],
) -> ApplyResult:
    """Bring supervisord in line with ``sessions`` (this host's, from the store).

    Call with :func:`apply_lock` held. ``start`` starts the given sessions (name, port)
    and returns the names it started (boot.py paces them).
    """
    paths.ensure()
    up = daemon.is_up(sup)
    live = read_live(paths)
    rpcext = wants_rpcext(up, sup)
    text, programs = render_for(paths, settings, sessions, rpcext=rpcext, live=live)
    wanted_running = {
        program_name(s.name): (s.name, s.port)
        for s in sessions
        if s.desired_state == DesiredState.RUNNING
    }
    if up and rpcext:
        fast = _add_only(paths, settings, sup, live, text)
        if fast is not None:
            added, infos = fast
            return _start_added(added, infos, wanted_running, start)
    if text != live:
        # until supervisord has reread it: no create takes the fast path meanwhile
        _pending(paths).touch(mode=0o600)
    write_config(paths, settings, text)
    result = ApplyResult()
    if not up:
        daemon.start(paths, sup)
        result.booted = True
        result.added = list(programs)
        save_deferred(paths, [])
        _pending(paths).unlink(missing_ok=True)
        # runners a killed supervisord left behind still hold their ports
        boot.reap_orphans(paths.home, sup.pid())
        result.started = start(sorted(wanted_running.values()))
        return result
    added, changed, removed = sup.reload_config()
    ours = set(programs)
    for program in removed:
        sup.stop(program)
        sup.remove_group(program)
    infos = sup.all_process_info()
    for program in changed:
        info = infos.get(program)
        if program == render.MONITOR_PROGRAM:
            # not a session: swap its entry at once (it autostarts when added back)
            sup.stop(program)
        elif info is not None and info.state in PROCESS_UP:
            result.deferred.append(program)
            continue
        sup.remove_group(program)
        sup.add_group(program)
        result.changed.append(program)
    save_deferred(paths, result.deferred)
    for program in added:
        sup.add_group(program)
    _pending(paths).unlink(missing_ok=True)
    result.added = [p for p in added if p in ours]
    result.removed = list(removed)
    to_start = {wanted_running[p] for p in (*added, *result.changed) if p in wanted_running}
    to_start |= {wanted_running[p] for p in never_started(infos) if p in wanted_running}
    if to_start:
        result.started = start(sorted(to_start))
    return result


def _add_only(
    paths: StatePaths, settings: Settings, sup: Supervisor, live: str, text: str
) -> tuple[list[str], dict[str, ProcessInfo]] | None:
    """Write ``text`` and add its new programs without a reread (a create), when that is
    all that changes and supervisord runs exactly what ``live`` says (no entry deferred,
    no write it has not reread, the same programs): then a reread would find only
    those programs added. Returns what was added and the process table from before;
    None when this does not apply (the caller rereads)."""
    diff = render.added_programs(live, text)
    if diff is None or deferred(paths) or _pending(paths).exists():
        return None
    sections, names = diff
    infos = sup.all_process_info()
    if set(infos) != set(render.process_names(live)):
        return None
    write_config(paths, settings, text)
    added = sup.add_programs(sections)
    if added is None or sorted(added) != sorted(names):
        return None
    return added, infos


def _start_added(
    added: list[str],
    infos: dict[str, ProcessInfo],
    wanted_running: dict[str, tuple[str, int]],
    start: Callable[[list[tuple[str, int]]], list[str]],
) -> ApplyResult:
    """Start what was added, and what an interrupted create left never started, as
    :func:`sync` does after a reread."""
    result = ApplyResult(added=list(added))
    to_start = {wanted_running[p] for p in (*added, *never_started(infos)) if p in wanted_running}
    if to_start:
        result.started = start(sorted(to_start))
    return result


def _pending(paths: StatePaths) -> Path:
    return paths.home / "reread-pending"


def write_for_boot(paths: StatePaths, settings: Settings, sessions: Sequence[Session]) -> None:
    """Render and write the config for a supervisord about to be started by someone
    else (systemd): no XML-RPC, no program entry left deferred."""
    paths.ensure()
    text, _programs = render_for(paths, settings, sessions)
    write_config(paths, settings, text)
    save_deferred(paths, [])


def refresh_program(paths: StatePaths, sup: Supervisor, program: str) -> None:
    """Swap a stopped program's entry for the current config (no-op when unchanged).

    Called before a session is started or restarted, so an entry deferred by an
    earlier apply takes effect exactly when its own session restarts."""
    _added, changed, _removed = sup.reload_config()
    if program in changed:
        sup.stop(program)
        sup.remove_group(program)
        sup.add_group(program)
    save_deferred(paths, sorted(deferred(paths) - {program}))
