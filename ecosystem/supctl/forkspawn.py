"""Runners (and the health monitor) forked from supervisord instead of exec'd: each
starts with its modules already loaded, and shares their memory with supervisord and
every other runner.

A runner's start is mostly Python starting and importing (~90 ms of CPU before its
port can answer; seconds of both cores when a boot starts 200). supervisord already
forks for every start and, in the child, sets the process group, the log pipes, the
user, the directory and the umask, and then calls ``options.execve``. With
``fork_runners = true`` in ``[rpcinterface:zapvisor]`` (supervisord calls
:func:`install` from ``rpcext.make_interface`` when it starts), supervisord imports
their modules once, and ``execve`` of such a command runs its ``main`` in that child
instead: same pid, same pipes, same signals and exit status for supervisord, same
command line for ``ps`` (setproctitle), same environment. Any other command (another
install's python, code changed on disk since) is exec'd as before.

What the child inherits from supervisord that a fresh interpreter would not have is
put back before ``main`` runs: signal handlers, ``os.environ``, ``sys.argv``, the
standard streams. supervisord's own objects stay referenced (never collected in the
child), so none of them closes a descriptor the program reuses; the child leaves with
``os._exit``, as the exec'd runner does.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from ecosystem.supctl import quietloop

MAINS = {"runner": "runner.__main__", "ecosystem.health": "ecosystem.health.__main__"}
"""The programs forked rather than exec'd: a runner and the health monitor (``python -m
KEY``, render.py), each by the ``main`` of its module."""

PRELOAD = (
    *MAINS.values(),
    "runner.startup",
    "runner.connectors.sim",
    "ecosystem.health.listener",
    "ctypes",
    "setproctitle",
)
"""What a sim runner and the monitor import before they do anything (``python -X
importtime`` of each), but the store: loaded once in supervisord. neonize loads in its
runner: its Go runtime starts threads, which a process that forks must not have."""

STORE_MODULES = {
    "sqlite": "ecosystem.store.sqlite",
    "postgres": "ecosystem.store.postgres",
    "supabase": "ecosystem.store.supabase",
}
"""The module of the store the runners open (runtime.env says which)."""

_RESET = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGCHLD", "SIGUSR1", "SIGUSR2")
"""The signals supervisord handles itself: back to their defaults in a runner."""


class ForkExec:
    """supervisord's ``options.execve`` for a child it just forked: a runner's command
    runs here, anything else is exec'd by ``exec_``."""

    def __init__(self, exec_: Callable[[str, list[str], dict[str, str]], Any]) -> None:
        self.exec_ = exec_
        self.files = code_files()
        self.loaded = stamp(self.files)
        """The files of the code loaded here, as they were then."""

    def __call__(self, filename: str, argv: list[str], env: dict[str, str]) -> Any:
        module = self.forks(filename, argv)
        if module is None:
            return self.exec_(filename, argv, env)
        if stamp(self.files) != self.loaded:
            # upgraded in place or edited since supervisord loaded it: the new code
            os.write(2, b"zapvisor: code changed since supervisord started: exec'd\n")
            return self.exec_(filename, argv, env)
        run_main(module, argv, env)

    @staticmethod
    def forks(filename: str, argv: list[str]) -> str | None:
        """The module (a key of MAINS) this command runs, when it can start from this
        process: one of this very python (another install's python is exec'd)."""
        if filename != sys.executable or len(argv) < 3 or argv[1] != "-m":
            return None
        return argv[2] if argv[2] in MAINS else None


def code_files() -> list[str]:
    """The files of every zapvisor module loaded in this process."""
    return [
        path
        for name, module in list(sys.modules.items())
        if name.partition(".")[0] in ("runner", "ecosystem")
        and (path := getattr(module, "__file__", None))
    ]


def stamp(files: list[str]) -> list[tuple[int, int]]:
    """(size, modification time) of each of ``files``: ~150 stats, ~0.3 ms."""
    out = []
    for path in files:
        try:
            st = os.stat(path)
        except OSError:
            out.append((-1, -1))
        else:
            out.append((st.st_size, st.st_mtime_ns))
    return out


def run_main(module: str, argv: list[str], env: dict[str, str]) -> NoReturn:
    """In supervisord's forked child: become the program ``argv`` names (``python -m
    module ...``), as its exec would have, and leave with its exit status."""
    code = 1
    try:
        main = _as_fresh_process(module, argv, env)
        got = main(argv[3:])  # a runner leaves with os._exit itself
        code = got if isinstance(got, int) else 0
    except SystemExit as exc:  # argparse's --help or usage error
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:  # the child must never return into supervisord
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
    with contextlib.suppress(BaseException):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _as_fresh_process(module: str, argv: list[str], env: dict[str, str]) -> Callable[..., Any]:
    """Put back what a fresh interpreter would have; the ``main`` of ``module``."""
    # supervisord's objects made since install() froze the rest (its programs, their
    # configs…) out of this process's collections too: a pass over them would write to
    # the pages they sit on, and so copy them (at 20 and 100 runners the difference was
    # within the measurement's noise, ~0.2 MB; it grows with supervisord's programs)
    gc.freeze()
    with contextlib.suppress(Exception):
        # first: it reuses the memory of supervisord's arguments and environment, as
        # the process had them when it started
        import setproctitle

        setproctitle.setproctitle(" ".join(argv))
        # what top and ps -e show: the executable's name, as an exec'd runner's
        setproctitle.setthreadtitle(os.path.basename(argv[0]))
    quietloop.forget_in_child()
    for name in _RESET:
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.clear()
    os.environ.update(env)
    entry = sys.modules[MAINS[module]]
    sys.argv = [str(entry.__file__), *argv[3:]]
    # supervisord's stream objects may hold buffered text of its own: fresh ones on the
    # descriptors supervisord just pointed at the runner's log pipes
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(  # noqa: SIM115
        2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False
    )
    main: Callable[..., Any] = entry.main
    return main


def install(options: Any, log: Callable[[str], None]) -> bool:
    """Load the runner's modules into this supervisord and fork runners from it from now
    on. False (runners are exec'd, as without it) when they cannot be loaded."""
    if isinstance(options.execve, ForkExec):
        return True
    try:
        import importlib

        for module in (*PRELOAD, _store_module(os.path.dirname(options.configfile))):
            importlib.import_module(module)
    except Exception as exc:  # a runner that cannot load is exec'd, and says why
        log(f"zapvisor: runners will be exec'd, not forked: cannot load them here: {exc!r}")
        return False
    if threading.active_count() != 1:  # a fork copies no other thread: no locks held
        log("zapvisor: runners will be exec'd, not forked: supervisord runs threads")
        return False
    # what exists now lives as long as supervisord: out of the collector's passes, so
    # they do not write to (and so copy) the pages the runners share
    gc.collect()
    gc.freeze()
    options.execve = ForkExec(options.execve)
    return True


def _store_module(home: str) -> str:
    """The store module the runners of state dir ``home`` open."""
    from pathlib import Path

    from ecosystem.paths import StatePaths
    from ecosystem.runtime_env import read_runtime_settings

    settings = read_runtime_settings(StatePaths(Path(home)).runtime_env, Path(home))
    return STORE_MODULES[settings.store_kind]
