"""`zapvisor logs --all`: every session's lines in one stream, each after its session's
name (like `pm2 logs`); `--json` prints one JSON object per line."""

from __future__ import annotations

import argparse
import json
import sys
import zlib

from ecosystem.errors import InvalidValue
from ecosystem.logstream import LogEntry, labelled
from tui.cli import control

_PALETTE = ("36", "32", "33", "35", "34", "96", "92", "93", "95", "94")


class Printer:
    """Prints entries as `name | line`, each name in a colour of its own on a terminal."""

    def __init__(self, *, raw: bool, as_json: bool, hosts: bool, colour: bool) -> None:
        self.raw = raw
        self.as_json = as_json
        self.hosts = hosts
        self.colour = colour
        self.width = 0

    def print(self, entries: list[LogEntry]) -> None:
        if self.as_json:
            for entry in entries:
                print(json.dumps(entry.to_json(), ensure_ascii=False))
        else:
            lines, self.width = labelled(entries, self.width, hosts=self.hosts, raw=self.raw)
            for tag, text in lines:
                if self.colour and tag.strip():
                    code = _PALETTE[zlib.crc32(tag.strip().encode()) % len(_PALETTE)]
                    tag = f"\x1b[{code}m{tag}\x1b[0m"
                print(f"{tag} | {text}")
        sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    if args.name is not None:
        raise InvalidValue(
            f"`logs --all` is every session's log: drop {args.name!r}, or drop --all"
        )
    if args.stderr:
        raise InvalidValue("`logs --all` shows stdout and stderr together: drop --stderr")
    orch = control.door()  # the fleet's other hosts over SSH too
    printer = Printer(
        raw=args.raw,
        as_json=args.json,
        hosts=orch.is_fleet and args.host is None,
        colour=sys.stdout.isatty() and not args.json,
    )
    if not args.follow:
        printer.print(orch.all_logs(args.host, lines=args.lines, grep=args.grep))
        return 0
    for batch in orch.follow_all_logs(args.host, backlog=args.lines, grep=args.grep):
        if batch:
            printer.print(batch)
    return 0
