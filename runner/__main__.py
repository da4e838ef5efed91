"""`python -m runner --home DIR --session NAME --port PORT`: what supervisord runs."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import NamedTuple, NoReturn

from runner import logsetup


class Args(NamedTuple):
    home: Path
    session: str
    port: int


def parse_args(argv: list[str] | None = None) -> Args:
    """The three options, read directly when given as supervisord gives them
    (ecosystem/supctl/render.py's runner_command): argparse's import is ~5 ms of every
    runner's start. Anything else (--help, another order, a mistake) goes to argparse."""
    words = sys.argv[1:] if argv is None else argv
    if (
        len(words) == 6
        and words[0::2] == ["--home", "--session", "--port"]
        and not words[1].startswith("-")
        and not words[3].startswith("-")
        and words[5].isascii()
        and words[5].isdigit()
    ):
        return Args(Path(words[1]), words[3], int(words[5]))
    import argparse

    parser = argparse.ArgumentParser(
        prog="zapvisor-runner",
        description="Run one zapvisor session (normally started by supervisord).",
    )
    parser.add_argument("--home", required=True, type=Path, help="zapvisor's state directory")
    parser.add_argument("--session", required=True, help="the session's name")
    parser.add_argument("--port", required=True, type=int, help="the port its API listens on")
    ns = parser.parse_args(words)
    return Args(ns.home, ns.session, ns.port)


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this runner when supervisord dies, even by SIGKILL:
    an orphaned runner would keep its port and block the session's next start."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import os
    import signal

    pr_set_pdeathsig = 1
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def without_httpx_cli() -> None:
    """Keep httpx's command line client out of this process. httpx imports it with
    httpx itself whenever click, rich and pygments are all installed (beside the
    terminal app and the dev tools they are): ~100 modules, ~4.4 MB of every runner
    that loads httpx, which a neonize runner does at start (neonize imports it) and any
    runner does at its first webhook delivery. A runner never runs that client; marked
    absent here, httpx takes its own way for a missing CLI (a `main` that says what to
    install) and the rest of httpx is what it always is."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> NoReturn:
    args = parse_args(argv)
    without_httpx_cli()
    die_with_parent()
    # Auth databases and secrets this process writes (the Go side included) are its own.
    os.umask(0o077)
    logsetup.configure(args.session)
    # zapvisor uses no pydantic plugin: without this, building the first model scans the
    # entry points of every installed distribution (importlib.metadata, email, zipfile),
    # on the way to /health and in memory for the runner's life
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from ecosystem.errors import ZapvisorError
    from runner.startup import run

    try:
        code = asyncio.run(run(args.home, args.session, args.port))
    except ZapvisorError as exc:
        logging.getLogger("runner").error("%s", exc, extra={"event": "fatal"})
        print(f"zapvisor-runner: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    exit_now(code)


def exit_now(code: int) -> NoReturn:
    """Exit without tearing the interpreter down: the runner closed its store, server
    and connector itself, and unloading hundreds of modules would cost each runner
    tens of milliseconds more at every stop (seconds when all of them stop at once)."""
    logging.shutdown()  # flushes the log handler
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
