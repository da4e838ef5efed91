"""`python -m ecosystem.health --home DIR`: the health monitor, run by supervisord as
an event listener (see supervisord.conf.j2). Not meant to be run by hand: it speaks
supervisord's listener protocol on stdin/stdout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="zapvisor-health",
        description="zapvisor's health monitor (a supervisord event listener).",
    )
    parser.add_argument("--home", required=True, type=Path, help="zapvisor's state directory")
    args = parser.parse_args(argv)
    from ecosystem.health.listener import main as run

    return run(args.home)


if __name__ == "__main__":
    sys.exit(main())
