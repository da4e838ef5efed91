"""`python -m runner --home DIR --session NAME --port PORT`: what supervisord runs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from runner import logs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="zapvisor-runner",
        description="Run one zapvisor session (normally started by supervisord).",
    )
    parser.add_argument("--home", required=True, type=Path, help="zapvisor's state directory")
    parser.add_argument("--session", required=True, help="the session's name")
    parser.add_argument("--port", required=True, type=int, help="the port its API listens on")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Auth databases and secrets this process writes (the Go side included) are its own.
    os.umask(0o077)
    logs.configure(args.session)
    from ecosystem.errors import ZapvisorError
    from runner.core import run

    try:
        return asyncio.run(run(args.home, args.session, args.port))
    except ZapvisorError as exc:
        logging.getLogger("runner").error("%s", exc, extra={"event": "fatal"})
        print(f"zapvisor-runner: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
